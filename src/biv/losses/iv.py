"""iv: the paper's IV baseline, (1/K) sum e^2 / (sigma^2 + epsilon): BIV's weights without their
normalization."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from biv.losses._core import LossResult
from biv.losses.biv import EPSILON, checked
from biv.losses.biv import LOSS as BIV

if TYPE_CHECKING:
    from torch import Tensor


def loss(pred: Tensor, target: Tensor, var: Tensor, epsilon: float = EPSILON["default"]) -> Tensor:
    """(1/K) sum e^2 / (var + epsilon); epsilon = 0 needs every var > 0."""
    e, var, epsilon = checked(pred, target, var, epsilon)
    return (e.square() / (var + epsilon)).mean()


def compute(pred: Tensor, target: Tensor, var: Tensor, params: dict, var_host=None) -> LossResult:
    return LossResult(loss(pred, target, var, params["epsilon"]), params["epsilon"])


#: BIV's declaration (its epsilon, the check of var > 0 for epsilon = 0), another computation.
LOSS = replace(
    BIV,
    name="iv",
    description="inverse-variance weighted mean: (1/K) sum e^2/(sigma^2 + epsilon)",
    compute=compute,
)
