"""mse: the L2 loss, (1/K) sum e^2 with e = pred - target (the paper's L2 baseline)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from biv.losses._core import LossResult, LossType, prepare

if TYPE_CHECKING:
    from torch import Tensor


def loss(pred: Tensor, target: Tensor) -> Tensor:
    """(1/K) sum (pred - target)^2."""
    e, _ = prepare(pred, target)
    return e.square().mean()


def compute(pred: Tensor, target: Tensor, var: Tensor, params: dict, var_host=None) -> LossResult:
    """The MSE; ``var`` is checked as every loss checks it, and not used."""
    e, _ = prepare(pred, target, var)
    return LossResult(e.square().mean(), None)


LOSS = LossType(name="mse", description="L2: (1/K) sum e^2", parameters={}, compute=compute)
