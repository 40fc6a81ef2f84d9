"""The noise-variance distributions as numbers: uniform, gamma and their two-component mixture.

Pure arithmetic (means, variances); drawing from them is :mod:`biv.noise.draws`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar


def finite(where: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where}={value!r} not allowed: must be a finite number")
    return float(value)


@dataclass(frozen=True)
class Uniform:
    """U(a, b) with 0 <= a <= b; a == b is a point mass."""

    a: float
    b: float
    distribution: ClassVar[str] = "uniform"

    def __post_init__(self) -> None:
        a, b = finite("uniform a", self.a), finite("uniform b", self.b)
        if not 0 <= a <= b:
            raise ValueError(f"uniform a={a!r}, b={b!r} not allowed: need 0 <= a <= b")
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "b", b)

    @property
    def mean(self) -> float:
        return (self.a + self.b) / 2

    @property
    def var(self) -> float:
        return (self.b - self.a) ** 2 / 12

    def params(self) -> dict[str, float]:
        return {"a": self.a, "b": self.b}


@dataclass(frozen=True)
class Gamma:
    """Gamma(shape, rate): mean shape/rate, variance shape/rate^2."""

    shape: float
    rate: float
    distribution: ClassVar[str] = "gamma"

    def __post_init__(self) -> None:
        for name in ("shape", "rate"):
            value = finite(f"gamma {name}", getattr(self, name))
            if value <= 0:
                raise ValueError(f"gamma {name}={value!r} not allowed: must be > 0")
            object.__setattr__(self, name, value)

    @property
    def mean(self) -> float:
        return self.shape / self.rate

    @property
    def var(self) -> float:
        return self.shape / self.rate**2

    def params(self) -> dict[str, float]:
        return {"shape": self.shape, "rate": self.rate}


@dataclass(frozen=True)
class Mixture:
    """Component 1 with probability p, component 2 (if any) with 1 - p; one component: p = 1."""

    components: tuple[Uniform | Gamma, ...]
    p: float = 1.0

    def __post_init__(self) -> None:
        components = tuple(self.components)
        if len(components) not in (1, 2):
            raise ValueError(f"mixture needs 1 or 2 components, got {len(components)}")
        p = finite("mixture p", self.p)
        if not 0 <= p <= 1 or (len(components) == 1 and p != 1):
            raise ValueError(
                f"mixture p={p!r} not allowed: need 0 <= p <= 1 (p = 1 with one component)"
            )
        object.__setattr__(self, "components", components)
        object.__setattr__(self, "p", p)

    @property
    def weights(self) -> tuple[float, ...]:
        return (self.p, 1 - self.p)[: len(self.components)]

    @property
    def mean(self) -> float:
        return sum(w * c.mean for w, c in zip(self.weights, self.components, strict=True))

    @property
    def var(self) -> float:
        mean, pairs = self.mean, zip(self.weights, self.components, strict=True)
        return sum(w * (c.var + (c.mean - mean) ** 2) for w, c in pairs)
