"""Label-noise variance distributions and seeded, vectorized noisy-label draws.

A noise model is a :class:`Mixture` of one or two components (:class:`Uniform`,
:class:`Gamma`) over the per-label variance sigma^2 (raw label units^2): component 1 with
probability p, component 2 with 1 - p. :func:`draw` samples, for every label, the component,
sigma^2, the label noise delta ~ N(0, sigma^2) and the variance the learner sees,
|sigma^2 + eta| with eta ~ N(0, (sigma^2 / 3)^2 * vd). The setting is a
:class:`biv.config.noise.NoiseSpec` (checked by :func:`biv.config.noise.resolve`).

All draws use one CPU ``torch.Generator`` seeded with the given seed and float64 arithmetic;
gamma variates use the Marsaglia-Tsang method on that generator (torch's own gamma sampler
takes no generator). The draw order is fixed: component ids (two components only), sigma^2
per component in order, delta, then eta (vd > 0 only), so the noisy labels do not depend on vd.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import Tensor

from biv.config.distributions import Gamma, Uniform

if TYPE_CHECKING:
    from biv.config.noise import NoiseSpec


def _standard_gamma(shape: float, n: int, gen: torch.Generator) -> Tensor:
    """n Gamma(shape, 1) variates (Marsaglia & Tsang 2000), vectorized over rejection rounds.

    For shape < 1 it samples Gamma(shape + 1) and multiplies by U^(1/shape).
    """
    alpha = shape + 1.0 if shape < 1 else shape
    d = alpha - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    out = torch.empty(n, dtype=torch.float64)
    todo = torch.arange(n)
    while len(todo):  # each round accepts > 95 % of the remaining samples
        x = torch.randn(len(todo), generator=gen, dtype=torch.float64)
        u = torch.rand(len(todo), generator=gen, dtype=torch.float64)
        v = 1.0 + c * x
        v = v * v * v
        ok = (v > 0) & (u.log_() < 0.5 * x * x + d * (1.0 - v + v.log()))
        if len(todo) == n:  # todo is every position: plain assignment is faster
            out = d * v
        else:
            out[todo] = d * v
        todo = todo[(~ok).nonzero()[:, 0]]  # rejected candidates are redrawn
    if shape < 1:
        out *= torch.rand(n, generator=gen, dtype=torch.float64).pow_(1.0 / shape)
    return out


class NoiseDraw(NamedTuple):
    """One draw for N labels: noisy labels, true and seen variances (float64) and the 0-based
    component index (int8)."""

    y_noisy: Tensor
    var: Tensor
    var_seen: Tensor
    component: Tensor


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
        raise ValueError(f"seed={seed!r} not allowed: must be an int in [0, 2**64)")
    return seed


def sample(dist: Uniform | Gamma, n: int, gen: torch.Generator) -> Tensor:
    """n float64 variates of ``dist`` from ``gen``."""
    if isinstance(dist, Gamma):
        return _standard_gamma(dist.shape, n, gen) / dist.rate
    u = torch.rand(n, generator=gen, dtype=torch.float64)
    return u.mul_(dist.b - dist.a).add_(dist.a)


def draw(y: Tensor, setting: NoiseSpec, seed: int) -> NoiseDraw:
    """Draw noisy labels for the clean labels ``y`` (N,) (raw units), reproducibly from ``seed``,
    from a resolved noise setting."""
    mixture, vd = setting.mixture, setting.variance_disturbance
    if not isinstance(y, Tensor) or y.ndim != 1 or not y.is_floating_point():
        raise ValueError(f"y must be a 1-D floating-point tensor (N,), got {y!r:.80}")
    gen = torch.Generator().manual_seed(_check_seed(seed))
    n = len(y)
    if len(mixture.components) == 2:
        u = torch.rand(n, generator=gen, dtype=torch.float64)
        component = (u >= mixture.p).to(torch.int8)
    else:
        component = torch.zeros(n, dtype=torch.int8)
    var = torch.empty(n, dtype=torch.float64)
    for j, dist in enumerate(mixture.components):
        mask = component == j
        count = int(mask.sum())
        if count:
            var[mask] = sample(dist, count, gen)
    delta = torch.randn(n, generator=gen, dtype=torch.float64).mul_(var.sqrt())
    y_noisy = delta.add_(y.detach().to("cpu", torch.float64))
    if vd > 0:
        eta = torch.randn(n, generator=gen, dtype=torch.float64).mul_(var).mul_(math.sqrt(vd) / 3)
        var_seen = eta.add_(var).abs_()
    else:
        var_seen = var.clone()
    return NoiseDraw(y_noisy, var, var_seen, component)
