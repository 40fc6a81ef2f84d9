"""Comma-separated positional fields of the original command lines, with precise errors.

Every error names the flag, the 1-based field position, the field's meaning, the value received
and what is allowed, e.g. ``--model_settings field 2 (loss): got 'l1'; allowed: mse, cutoffMSE,
iv, biv  [format: model,loss[,epsilon_or_threshold]]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


class LegacyArgError(ValueError):
    """A malformed original-style argument string."""


@dataclass(frozen=True)
class Fields:
    """One flag's value split on commas (each field stripped of surrounding blanks)."""

    flag: str
    raw: str
    layout: str
    offset: int = 0  # fields consumed before this view (keeps reported positions absolute)

    @property
    def values(self) -> list[str]:
        return [v.strip() for v in self.raw.split(",")][self.offset :]

    def __len__(self) -> int:
        return len(self.values)

    def shifted(self, n: int) -> Fields:
        """A view without the first ``n`` fields; positions stay those of the whole string."""
        return Fields(self.flag, self.raw, self.layout, self.offset + n)

    def error(self, pos: int, meaning: str, value: str | None, allowed: str) -> LegacyArgError:
        got = (
            f"missing ({self.flag}={self.raw!r} has {len(self.values) + self.offset} field(s))"
            if value is None
            else f"got {value!r}"
        )
        return LegacyArgError(
            f"{self.flag} field {pos + self.offset} ({meaning}): {got}; allowed: {allowed}"
            f"  [format: {self.layout}]"
        )

    def has(self, pos: int) -> bool:
        return 1 <= pos <= len(self.values)

    def get(self, pos: int, meaning: str, allowed: str) -> str:
        if not self.has(pos):
            raise self.error(pos, meaning, None, allowed)
        return self.values[pos - 1]

    def text(self, pos: int, meaning: str) -> str:
        value = self.get(pos, meaning, "any non-empty text")
        if not value:
            raise self.error(pos, meaning, value, "any non-empty text")
        return value

    def choice(self, pos: int, meaning: str, choices: tuple[str, ...]) -> str:
        allowed = ", ".join(choices)
        value = self.get(pos, meaning, allowed)
        if value not in choices:
            raise self.error(pos, meaning, value, allowed)
        return value

    def boolean(self, pos: int, meaning: str) -> bool:
        value = self.get(pos, meaning, "True or False")
        if value.lower() not in ("true", "false"):
            raise self.error(pos, meaning, value, "True or False")
        return value.lower() == "true"

    def number(
        self,
        pos: int,
        meaning: str,
        *,
        low: float | None = None,
        high: float | None = None,
        low_open: bool = False,
    ) -> float:
        allowed = _describe_range(low, high, low_open)
        value = self.get(pos, meaning, allowed)
        try:
            x = float(value)
        except ValueError:
            raise self.error(pos, meaning, value, allowed) from None
        if not math.isfinite(x) or _outside(x, low, high, low_open):
            raise self.error(pos, meaning, value, allowed)
        return x

    def integer(self, pos: int, meaning: str, *, low: int | None = None) -> int:
        allowed = "an integer" + ("" if low is None else f" >= {low}")
        value = self.get(pos, meaning, allowed)
        try:
            x = float(value)
        except ValueError:
            raise self.error(pos, meaning, value, allowed) from None
        if not x.is_integer() or (low is not None and x < low):
            raise self.error(pos, meaning, value, allowed)
        return int(x)

    def no_more(self, count: int, what: str) -> None:
        """Reject fields after position ``count``."""
        if len(self.values) > count:
            pos = count + 1
            raise self.error(pos, "unexpected extra field", self.values[count], what)

    def ignore_rest(self, count: int, notes: list[str]) -> None:
        """Accept fields after position ``count`` as the original did (it never read them), with
        a note naming them."""
        extra = self.values[count:]
        if extra:
            first = count + 1 + self.offset
            where = (
                f"field {first}" if len(extra) == 1 else f"fields {first}-{first + len(extra) - 1}"
            )
            notes.append(
                f"{self.flag} {where} ({','.join(extra)}) ignored, as the original did "
                f"[format: {self.layout}]"
            )


def _describe_range(low: float | None, high: float | None, low_open: bool) -> str:
    if low is None and high is None:
        return "a finite number"
    if high is None:
        return f"a number {'>' if low_open else '>='} {low:g}"
    if low is None:
        return f"a number <= {high:g}"
    return f"a number in {'(' if low_open else '['}{low:g}, {high:g}]"


def _outside(x: float, low: float | None, high: float | None, low_open: bool) -> bool:
    if low is not None and (x < low or (low_open and x == low)):
        return True
    return high is not None and x > high
