"""biv_adaptive: BIV with a per-batch epsilon, the smallest epsilon >= 0 whose effective batch
size (sum w)^2 / sum w^2 reaches ratio * K. The search runs on the host, at every step."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from biv.losses._core import LossResult, LossType, parameter, prepare
from biv.losses.biv import weighted

if TYPE_CHECKING:
    import numpy as np
    from torch import Tensor

RATIO = {
    "description": "target effective batch size as a fraction of the batch",
    "type": "number",
    "exclusiveMinimum": 0,
    "maximum": 1,
    "default": 0.5,
}
#: When some sigma^2 == 0, epsilon = 0 gives an infinite weight, so the search starts at
#: epsilon >= ZERO_VAR_FLOOR * (smallest positive sigma^2) instead (relative, so that the chosen
#: epsilon scales with the variances; absolute when every sigma^2 is 0).
ZERO_VAR_FLOOR = 1e-9
#: Bisection stops when the bracket is narrower than this fraction of the chosen epsilon.
BISECTION_RTOL = 1e-6
#: Relative slack on the effective-batch-size target, absorbing float64 rounding only.
_ESS_SLACK = 1e-12


def _ess(var: np.ndarray, eps: float) -> float:
    """(sum w)^2 / sum w^2 for w = 1/(var + eps), with w rescaled into (0, 1] (no overflow)."""
    w = (var.min() + eps) / (var + eps)
    return float(w.sum() ** 2 / w.dot(w))


def choose_epsilon(var: np.ndarray, ratio: float) -> float:
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


def loss(
    pred: Tensor,
    target: Tensor,
    var: Tensor,
    ratio: float = RATIO["default"],
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
    import torch

    e, var = prepare(pred, target, var)
    ratio = parameter("ratio", RATIO, ratio)
    if var_host is None:  # the search runs on the host: copy the batch's variances there
        var_host = var.detach().to("cpu", torch.float64).numpy()
    eps = choose_epsilon(var_host, ratio)
    if math.isinf(eps):
        return e.square().mean(), eps
    return weighted(e, var, eps), eps


def compute(pred: Tensor, target: Tensor, var: Tensor, params: dict, var_host=None) -> LossResult:
    return LossResult(*loss(pred, target, var, params["ratio"], var_host))


LOSS = LossType(
    name="biv_adaptive",
    description="BIV with epsilon chosen per batch: the smallest whose effective batch size "
    "reaches ratio * K",
    parameters={"ratio": RATIO},
    compute=compute,
    host_variances=True,
    chooses_epsilon=True,
)
