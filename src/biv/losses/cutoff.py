"""cutoff: the MSE over the samples with sigma^2 < threshold (strict); a batch keeping none is
skipped. The threshold is given in raw label units squared."""

from __future__ import annotations

from typing import TYPE_CHECKING

from biv.losses._core import LossResult, LossType, parameter, prepare, trusted

if TYPE_CHECKING:
    from torch import Tensor

THRESHOLD = {
    "description": "keep the samples with sigma^2 < threshold, in raw label units squared "
    "(.inf keeps every sample)",
    "type": "number",
    "exclusiveMinimum": 0,
    "x-inf-allowed": True,
}


def loss(pred: Tensor, target: Tensor, var: Tensor, threshold: float) -> Tensor | None:
    """MSE over the samples with var < threshold (strict); ``None`` when there is none (NaN
    inside ``trusted_variances``, where the caller skips such batches: :func:`kept`)."""
    e, var = prepare(pred, target, var)
    keep = var < parameter("threshold", THRESHOLD, threshold)
    if not trusted() and not keep.any():
        return None
    if trusted() and e.device.type != "cpu":
        return kept_mean_square(e, keep)
    return e[keep].square().mean()


def kept_mean_square(e: Tensor, keep: Tensor) -> Tensor:
    """Mean of e^2 over ``keep`` (NaN if empty) without ``e[keep]``, whose size the host would
    have to wait for. Equal to ``e[keep].square().mean()`` up to the order of summation."""
    return e.square().where(keep, 0.0).sum() / keep.sum()


def kept(params: dict, var: Tensor) -> Tensor:
    """The CPU mask of the samples the loss keeps, var < threshold (pass var in the
    predictions' dtype, in which the loss compares)."""
    return var.detach().cpu() < params["threshold"]


def compute(pred: Tensor, target: Tensor, var: Tensor, params: dict, var_host=None) -> LossResult:
    return LossResult(loss(pred, target, var, params["threshold"]), None)


LOSS = LossType(
    name="cutoff",
    description="MSE over the samples with sigma^2 < threshold; a batch keeping none is skipped",
    parameters={"threshold": THRESHOLD},
    compute=compute,
    kept=kept,
    raw_units=("threshold",),
)
