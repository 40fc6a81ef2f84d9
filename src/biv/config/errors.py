"""The one error type of the config layer: a key path as the user wrote it, and the problem."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config value that cannot work. ``key`` is the path as the user wrote it."""

    def __init__(self, key: str, problem: str):
        super().__init__(f"{key}: {problem}" if key else problem)
        self.key = key
        self.problem = problem

    def under(self, prefix: str) -> ConfigError:
        """The same problem, with ``prefix`` put in front of the key."""
        if not self.key:
            return ConfigError(prefix, self.problem)
        joiner = "" if self.key.startswith("[") else "."
        return ConfigError(f"{prefix}{joiner}{self.key}" if prefix else self.key, self.problem)

    def rekeyed(self, key: str) -> ConfigError:
        return ConfigError(key, self.problem)


def not_allowed(key: str, value: object, why: str) -> ConfigError:
    """The one format of a bad value: ``key: <value> is not allowed; <why>``."""
    return ConfigError(key, f"{value!r} is not allowed; {why}")


def fail(key: str, value: object, allowed: str) -> ConfigError:
    """``key: <value> is not allowed; expected <allowed>``."""
    return not_allowed(key, value, f"expected {allowed}")
