"""Label-noise variance distributions and seeded, vectorized noisy-label draws (numpy only: the
noise-draw jobs start no torch).

A noise model is a :class:`Mixture` of one or two components (:class:`Uniform`,
:class:`Gamma`) over the per-label variance sigma^2 (raw label units^2): component 1 with
probability p, component 2 with 1 - p. :func:`draw` samples, for every label, the component,
sigma^2, the label noise delta ~ N(0, sigma^2) and the variance the learner sees,
|sigma^2 + eta| with eta ~ N(0, (sigma^2 / 3)^2 * vd). The setting is a
:class:`biv.config.noise.NoiseSpec` (checked by :func:`biv.config.noise.resolve`).

All draws use one ``numpy.random.Generator`` (PCG64) seeded with the given seed, in float64.
The draw order is fixed: component ids (two components only), sigma^2 per component in order,
delta, then eta (vd > 0 only), so the noisy labels do not depend on vd.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from biv.config.distributions import Gamma, Uniform

if TYPE_CHECKING:
    from biv.config.noise import NoiseSpec


class NoiseDraw(NamedTuple):
    """One draw for N labels: noisy labels, true and seen variances (float64) and the 0-based
    component index (int8)."""

    y_noisy: np.ndarray
    var: np.ndarray
    var_seen: np.ndarray
    component: np.ndarray


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
        raise ValueError(f"seed={seed!r} not allowed: must be an int in [0, 2**64)")
    return seed


def generator(seed: int) -> np.random.Generator:
    """The generator of a draw with ``seed``."""
    return np.random.Generator(np.random.PCG64(_check_seed(seed)))


def sample(dist: Uniform | Gamma, n: int, gen: np.random.Generator) -> np.ndarray:
    """n float64 variates of ``dist`` from ``gen``."""
    if isinstance(dist, Gamma):
        return gen.standard_gamma(dist.shape, n) / dist.rate
    return gen.uniform(dist.a, dist.b, n)


def draw(y, setting: NoiseSpec, seed: int) -> NoiseDraw:
    """Draw noisy labels for the clean labels ``y`` (N,) (raw units, any float array),
    reproducibly from ``seed``, from a resolved noise setting."""
    mixture, vd = setting.mixture, setting.variance_disturbance
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.floating):
        raise ValueError(f"y must be a 1-D floating-point array (N,), got {y!r:.80}")
    gen = generator(seed)
    n = len(y)
    if len(mixture.components) == 2:
        component = (gen.random(n) >= mixture.p).astype(np.int8)
    else:
        component = np.zeros(n, dtype=np.int8)
    var = np.empty(n)
    for j, dist in enumerate(mixture.components):
        mask = component == j
        var[mask] = sample(dist, int(mask.sum()), gen)
    y_noisy = gen.standard_normal(n) * np.sqrt(var) + y.astype(np.float64)
    if vd > 0:
        var_seen = np.abs(gen.standard_normal(n) * var * (math.sqrt(vd) / 3) + var)
    else:
        var_seen = var.copy()
    return NoiseDraw(y_noisy, var, var_seen, component)
