"""biv: batch inverse-variance weighting, sum w e^2 / sum w with w = 1 / (sigma^2 + epsilon)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from biv.losses._core import LossResult, LossType, check_offset, parameter, prepare

if TYPE_CHECKING:
    from torch import Tensor

#: Also the epsilon of ``iv``.
EPSILON = {
    "description": "eps added to the normalized variances, weights 1/(sigma^2 + eps); "
    "0 needs every sigma^2 > 0",
    "type": "number",
    "minimum": 0,
    "default": 0.5,
}


def checked(pred: Tensor, target: Tensor, var: Tensor, epsilon: float):
    """(e, var, epsilon) of inputs and an epsilon checked as weights 1/(var + epsilon) need."""
    e, var = prepare(pred, target, var)
    epsilon = parameter("epsilon", EPSILON, epsilon)
    check_offset(epsilon, var)
    return e, var, epsilon


def weighted(e: Tensor, var: Tensor, epsilon: float) -> Tensor:
    """sum w e^2 / sum w with w = 1 / (var + epsilon), of checked inputs."""
    w = 1.0 / (var + epsilon)
    return (w * e.square()).sum() / w.sum()


def loss(pred: Tensor, target: Tensor, var: Tensor, epsilon: float = EPSILON["default"]) -> Tensor:
    """sum w e^2 / sum w with w = 1 / (var + epsilon); epsilon = 0 needs every var > 0."""
    return weighted(*checked(pred, target, var, epsilon))


def compute(pred: Tensor, target: Tensor, var: Tensor, params: dict, var_host=None) -> LossResult:
    return LossResult(loss(pred, target, var, params["epsilon"]), params["epsilon"])


LOSS = LossType(
    name="biv",
    description="batch inverse-variance weighted: sum w e^2 / sum w, w = 1/(sigma^2 + epsilon)",
    parameters={"epsilon": EPSILON},
    compute=compute,
    variance_offset="epsilon",
)
