"""Mini-batch regression losses: MSE, IV, BIV, adaptive BIV and cutoff MSE.

For a batch of K samples with prediction f, noisy label y~ and known label-noise variance
sigma^2 (normalized label units), e = f - y~ and w = 1 / (sigma^2 + epsilon):

* ``mse``:          (1/K) sum e^2
* ``iv``:           (1/K) sum w e^2   (the paper's IV baseline: BIV without normalization)
* ``biv``:          sum w e^2 / sum w
* ``biv_adaptive``: BIV with the smallest epsilon >= 0 whose effective batch size
  (sum w)^2 / sum w^2 reaches ratio * K
* ``cutoff``:       mean of e^2 over S = {k : sigma^2 < C}; ``None`` when S is empty

Every function accepts tensors of shape (K,) or (K, 1) (each argument independently; they are
flattened, never broadcast against each other) and rejects negative or non-finite variances.

Those checks read values back from the device. A training loop validates sigma^2 once
(:func:`check_variances`), decides which cutoff batches are empty on the CPU
(:func:`cutoff_kept`) and calls the losses inside :func:`trusted_variances`, where they skip the
checks and never wait for the device.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextvars import ContextVar
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from biv.config.loss import LossSpec

#: When some sigma^2 == 0, epsilon = 0 gives an infinite weight, so ``biv_adaptive`` searches
#: epsilon >= ZERO_VAR_FLOOR * (smallest positive sigma^2) instead (relative, so that the chosen
#: epsilon scales with the variances; absolute when every sigma^2 is 0).
ZERO_VAR_FLOOR = 1e-9
#: Bisection stops when the bracket is narrower than this fraction of the chosen epsilon.
BISECTION_RTOL = 1e-6
#: Relative slack on the effective-batch-size target, absorbing float64 rounding only.
_ESS_SLACK = 1e-12


_TRUSTED: ContextVar[bool] = ContextVar("biv_losses_trusted", default=False)


class trusted_variances:  # noqa: N801 (used like a function: ``with trusted_variances():``)
    """Within this block the losses skip the value checks of sigma^2 (finite, >= 0, > 0 for
    epsilon = 0) and the cutoff loss its empty-batch check, which would wait for the device.

    For a caller that has run :func:`check_variances` on every sigma^2 it will pass and skips
    the batches that :func:`cutoff_kept` shows to be empty: there the cutoff value is NaN.
    """

    def __enter__(self) -> None:
        self._token = _TRUSTED.set(True)

    def __exit__(self, *exc: object) -> None:
        _TRUSTED.reset(self._token)


class LossResult(NamedTuple):
    """``value``: the loss (``None``: skip this step); ``epsilon``: the epsilon used, if any."""

    value: Tensor | None
    epsilon: float | None


def _flat(name: str, x: Tensor) -> Tensor:
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (K,) or (K, 1), got {type(x)}")
    if x.ndim == 2 and x.shape[1] == 1:
        return x[:, 0]
    if x.ndim != 1:
        raise ValueError(f"{name} must have shape (K,) or (K, 1), got {tuple(x.shape)}")
    return x


def _check_var(var: Tensor, k: int) -> Tensor:
    var = _flat("var", var)
    if len(var) != k or k == 0:
        raise ValueError(f"var must hold K={k} >= 1 values like pred, got {len(var)}")
    bad = ~(torch.isfinite(var) & (var >= 0))
    if bad.any():
        i = int(bad.nonzero()[0, 0])
        raise ValueError(f"var must be finite and >= 0, got var[{i}]={float(var[i])!r}")
    return var


def _prepare(pred: Tensor, target: Tensor, var: Tensor | None = None):
    """Flatten the inputs, check their lengths and the variances; return (e, var)."""
    pred, target = _flat("pred", pred), _flat("target", target)
    if len(pred) == 0 or len(target) != len(pred):
        raise ValueError(
            f"pred and target must hold the same number K >= 1 of samples, "
            f"got {len(pred)} and {len(target)}"
        )
    e = pred - target
    if var is None:
        return e, None
    if _TRUSTED.get():
        var = _flat("var", var)
        if len(var) != len(e):
            raise ValueError(f"var must hold K={len(e)} >= 1 values like pred, got {len(var)}")
        return e, var.to(e.dtype)
    return e, _check_var(var, len(e)).to(e.dtype)


def _check_number(
    name: str, value: float, low: float, allowed: str, allow_inf: bool = False
) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number ({allowed}), got {value!r}")
    value = float(value)
    if math.isnan(value) or value < low or (math.isinf(value) and not allow_inf):
        raise ValueError(f"{name}={value!r} not allowed: {allowed}")
    return value


def _check_eps(eps: float, var: Tensor) -> float:
    eps = _check_number("epsilon", eps, 0.0, "epsilon must be finite and >= 0")
    if eps == 0 and not _TRUSTED.get():
        zero = var == 0
        if zero.any():
            i = int(zero.nonzero()[0, 0])
            raise ValueError(
                f"epsilon=0.0 needs every var > 0 (weights 1/(var + epsilon)), "
                f"got var[{i}]=0.0: use epsilon > 0"
            )
    return eps


def _check_ratio(ratio: float) -> float:
    ratio = _check_number("ratio", ratio, 0.0, "ratio must be in (0, 1]")
    if ratio == 0 or ratio > 1:
        raise ValueError(f"ratio={ratio!r} not allowed: ratio must be in (0, 1]")
    return ratio


def _biv(e: Tensor, var: Tensor, eps: float) -> Tensor:
    w = 1.0 / (var + eps)
    return (w * e.square()).sum() / w.sum()


def mse(pred: Tensor, target: Tensor) -> Tensor:
    """(1/K) sum (pred - target)^2."""
    e, _ = _prepare(pred, target)
    return e.square().mean()


def iv(pred: Tensor, target: Tensor, var: Tensor, eps: float = 0.5) -> Tensor:
    """(1/K) sum e^2 / (var + eps): inverse-variance weights without normalization."""
    e, var = _prepare(pred, target, var)
    eps = _check_eps(eps, var)
    return (e.square() / (var + eps)).mean()


def biv(pred: Tensor, target: Tensor, var: Tensor, eps: float = 0.5) -> Tensor:
    """sum w e^2 / sum w with w = 1 / (var + eps); eps = 0 needs every var > 0."""
    e, var = _prepare(pred, target, var)
    return _biv(e, var, _check_eps(eps, var))


def _ess(var: np.ndarray, eps: float) -> float:
    """(sum w)^2 / sum w^2 for w = 1/(var + eps), with w rescaled into (0, 1] (no overflow)."""
    w = (var.min() + eps) / (var + eps)
    return float(w.sum() ** 2 / np.dot(w, w))


def _choose_epsilon(var: np.ndarray, ratio: float) -> float:
    """Smallest epsilon whose effective batch size reaches ratio * K (``inf`` if none is finite).

    ESS(eps) = (sum w)^2 / sum w^2 is non-decreasing in eps: with dw_k/deps = -w_k^2,
    dESS/deps = 2 (sum w) [(sum w)(sum w^3) - (sum w^2)^2] / (sum w^2)^2 >= 0 by Cauchy-Schwarz,
    (sum w^2)^2 = (sum w^1/2 w^3/2)^2 <= (sum w)(sum w^3), with equality only when all w are
    equal (then ESS = K for every eps). ESS -> K as eps -> inf, so for ratio < 1 a finite
    epsilon exists and bisection on a bracket [lo, hi] with ESS(lo) < target <= ESS(hi) finds it.
    The upper end is closed-form: weights in [a, b] with b/a = rho satisfy
    ESS/K >= 4 rho / (1 + rho)^2 (Kantorovich), which is >= ratio when
    rho <= rho* = (2 - ratio + 2 sqrt(1 - ratio)) / ratio, i.e. for
    eps >= (max var - rho* min var) / (rho* - 1).
    """
    target = ratio * len(var) * (1 - _ESS_SLACK)
    vmin, vmax = float(var.min()), float(var.max())
    if vmin > 0:
        lo = 0.0
    else:
        positive = var[var > 0]
        lo = ZERO_VAR_FLOOR * (float(positive.min()) if len(positive) else 1.0)
    if vmin == vmax or _ess(var, lo) >= target:
        return lo
    if ratio == 1:
        return math.inf
    rho = (2 - ratio + 2 * math.sqrt(1 - ratio)) / ratio
    hi = max((vmax - rho * vmin) / (rho - 1), lo)
    # Invariant: ESS(lo) < target <= ESS(hi). The loop ends: hi stays >= the answer > 0 while
    # hi - lo halves, and BISECTION_RTOL is far above float64 resolution.
    while hi - lo > BISECTION_RTOL * hi:
        mid = 0.5 * (lo + hi)
        if _ess(var, mid) >= target:
            hi = mid
        else:
            lo = mid
    return hi


def biv_adaptive(
    pred: Tensor,
    target: Tensor,
    var: Tensor,
    ratio: float = 0.5,
    var_host: np.ndarray | None = None,
) -> tuple[Tensor, float]:
    """BIV with a per-batch epsilon: the smallest eps >= 0 with (sum w)^2/sum w^2 >= ratio*K.

    Returns ``(loss, eps_chosen)``. The epsilon is found by deterministic bisection (relative
    precision ``BISECTION_RTOL``; the returned eps always meets the target). It depends on var
    only, so the gradient w.r.t. pred is the exact BIV gradient at that eps. When the target
    is met at eps = 0 (every var > 0) the result is eps = 0.0 and BIV(eps=0). When some
    var == 0, eps starts at ``ZERO_VAR_FLOOR`` * (smallest positive var). With ratio = 1 and
    unequal variances no finite eps reaches K: the result is (MSE, inf), the eps -> inf limit.
    ``var_host``: the same variances as float64 on the host, if the caller has them there (spares
    the device -> host copy, a synchronisation on a GPU).
    """
    e, var = _prepare(pred, target, var)
    ratio = _check_ratio(ratio)
    if var_host is None:  # the search runs on the host: copy the batch's variances there
        var_host = var.detach().to("cpu", torch.float64).numpy()
    eps = _choose_epsilon(var_host, ratio)
    if math.isinf(eps):
        return e.square().mean(), eps
    return _biv(e, var, eps), eps


def cutoff(pred: Tensor, target: Tensor, var: Tensor, threshold: float) -> Tensor | None:
    """MSE over the samples with var < threshold (strict); ``None`` when there is none."""
    e, var = _prepare(pred, target, var)
    threshold = _check_threshold(threshold)
    keep = var < threshold
    trusted = _TRUSTED.get()
    if not trusted and not keep.any():
        return None
    if trusted and e.device.type != "cpu":
        return _kept_mean_square(e, keep)
    return e[keep].square().mean()


def _kept_mean_square(e: Tensor, keep: Tensor) -> Tensor:
    """Mean of e^2 over ``keep`` (NaN if empty) without ``e[keep]``, whose size the host would
    have to wait for. Equal to ``e[keep].square().mean()`` up to the order of summation."""
    return e.square().where(keep, 0.0).sum() / keep.sum()


def _check_threshold(threshold: float) -> float:
    threshold = _check_number(
        "threshold", threshold, 0.0, "threshold must be > 0 (inf allowed)", allow_inf=True
    )
    if threshold == 0:
        raise ValueError("threshold=0.0 not allowed: threshold must be > 0 (inf allowed)")
    return threshold


def check_variances(spec: dict, var: Tensor) -> None:
    """Check once what the loss of ``spec`` checks at every call: var finite and >= 0, and
    var > 0 everywhere for iv/biv with epsilon = 0. Raises ValueError."""
    var = _check_var(var, len(_flat("var", var)))
    loss = LossSpec.from_config("loss", spec)
    if loss.type in ("iv", "biv"):
        _check_eps(loss.epsilon, var)


def cutoff_kept(spec: dict, var: Tensor) -> Tensor | None:
    """For a cutoff spec, the CPU mask of the samples the loss keeps, var < threshold (pass var
    in the predictions' dtype, in which the loss compares); None for the other losses, which
    never skip a batch. A batch is skipped when none of its samples is kept."""
    if spec["type"] != "cutoff":
        return None
    return var.detach().cpu() < _check_threshold(spec["threshold"])


def make_loss(spec: dict | LossSpec) -> Callable[[Tensor, Tensor, Tensor], LossResult]:
    """Build ``loss(pred, target, var) -> LossResult`` from a loss of the config (a
    :class:`biv.config.LossSpec` or its dict, parsed by the same code with the same defaults);
    a cutoff ``threshold`` is in the units of the ``var`` passed at call time."""
    loss = spec if isinstance(spec, LossSpec) else LossSpec.from_config("loss", spec)
    if loss.type in ("iv", "biv"):
        eps = loss.epsilon
        fn = iv if loss.type == "iv" else biv
        return lambda pred, target, var: LossResult(fn(pred, target, var, eps), eps)
    if loss.type == "biv_adaptive":
        ratio = loss.ratio
        return lambda pred, target, var, var_host=None: LossResult(
            *biv_adaptive(pred, target, var, ratio, var_host)
        )
    if loss.type == "cutoff":
        threshold = loss.threshold
        return lambda pred, target, var: LossResult(cutoff(pred, target, var, threshold), None)

    def mse_loss(pred: Tensor, target: Tensor, var: Tensor) -> LossResult:
        _prepare(pred, target, var)
        return LossResult(mse(pred, target), None)

    return mse_loss
