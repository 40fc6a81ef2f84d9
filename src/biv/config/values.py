"""Checks of single values and mappings; each raises ConfigError naming the key."""

from __future__ import annotations

import math
from typing import Any

from biv.config.errors import ConfigError, fail

REQUIRED = object()
#: Seeds are 64-bit signed integers (torch.manual_seed, numpy): larger ones fail in the job.
MAX_SEED = 2**63 - 1


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    return (is_int(value) or isinstance(value, float)) and math.isfinite(value)


def integer(key: str, value: object, minimum: int, maximum: int | None = None) -> int:
    if not is_int(value) or value < minimum or (maximum is not None and value > maximum):
        bound = f"an integer >= {minimum}" + ("" if maximum is None else f" and <= {maximum}")
        raise fail(key, value, bound)
    return value


def number(key: str, value: object, *, minimum: float | None = None, positive=False) -> float:
    """A finite number (bools are not numbers), optionally >= minimum or > 0."""
    ok = is_number(value)
    if ok and positive and value <= 0:
        ok = False
    if ok and minimum is not None and value < minimum:
        ok = False
    if not ok:
        bound = " > 0" if positive else "" if minimum is None else f" >= {minimum:g}"
        raise fail(key, value, f"a finite number{bound}")
    return float(value)


def boolean(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise fail(key, value, "true or false")
    return value


def text(key: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise fail(key, value, "a non-empty string")
    return str(value)  # a plain str, also for str subclasses (Snakemake's AnnotatedString)


def mapping(key: str, value: object, fields: dict[str, Any]) -> dict[str, Any]:
    """``value`` as a dict over ``fields`` (key -> default, REQUIRED if it must be given)."""
    if not isinstance(value, dict):
        raise fail(key, value, f"a mapping with keys {sorted(fields)}")
    check_keys(key, value, fields)
    out = {}
    for name, default in fields.items():
        if name not in value and default is REQUIRED:
            raise ConfigError(_join(key, name), "missing (required)")
        out[name] = value.get(name, default)
    return out


def check_keys(key: str, value: dict, allowed) -> None:
    """Every key of ``value`` must be one of ``allowed``; the first other (in sorted order) is a
    ConfigError naming it."""
    unknown = sorted((k for k in value if k not in allowed), key=str)
    if unknown:
        raise ConfigError(
            _join(key, str(unknown[0])), f"unknown key; allowed keys: {', '.join(sorted(allowed))}"
        )


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name
