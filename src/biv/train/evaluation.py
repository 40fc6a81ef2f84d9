"""Test-set predictions and error sums of a pack of P runs (``biv.train.pack_model``), under
inference_mode; every test chunk is shared by the members, results have a leading P.

Two protocols (``training.eval_protocol``): ``standard``, eval mode (BatchNorm with its running
statistics) and the errors summed over all test samples; ``original``, as the original code
(which never called ``model.eval()``): BatchNorm normalised by the statistics of each test chunk
(the test batches, in test-set order), the other layers in eval mode, and the mean of the
per-batch means. The model is left as it was: the running statistics are neither read nor
updated (:func:`batch_statistics`).

Image batches are fed channels_last (``RunData.inputs``); on CUDA, when ``bf16`` is true
(opt-in) and the GPU computes bfloat16 natively, they run under bfloat16 autocast (predictions
returned as float32). On the CPU, and for feature inputs, the computation is plain float32. A
run evaluated in bfloat16 checks its final test MSE against float32 (:func:`bf16_vs_float32`).
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Protocol

import torch
from torch import Tensor, nn


class EvalData(Protocol):
    """What evaluation needs of ``biv.train.run_data.RunData``."""

    y_test: Tensor

    def inputs(self, x: Tensor) -> Tensor: ...


def use_bf16(bf16: bool, x: Tensor) -> bool:
    """Whether evaluating on ``x`` runs under bfloat16 autocast: asked for, CUDA images, and a
    GPU that computes bfloat16 natively (not emulated)."""
    return (
        bf16
        and x.is_cuda
        and x.ndim == 4
        and torch.cuda.is_bf16_supported(including_emulation=False)
    )


#: bfloat16 evaluation's stated bound: the relative change of a run's final test MSE against the
#: float32 evaluation of the same model. Measured with CPU autocast on a trained toy CNN (tests):
#: 0.14 % (0.4 % at most over three seeds).
BF16_MSE_RTOL = 0.02


def bf16_vs_float32(pred_bf16: Tensor, pred_fp32: Tensor, y_test: Tensor) -> list[dict]:
    """Per member of predictions (P, M): the relative difference of the test MSE from the
    bfloat16 predictions against the float32 ones, and whether it is within
    ``BF16_MSE_RTOL``."""
    mse = [((p.double() - y_test.double()) ** 2).mean(1) for p in (pred_bf16, pred_fp32)]
    rel = ((mse[0] - mse[1]).abs() / mse[1]).tolist()
    return [
        {
            "final_test_mse_rel_diff_vs_float32": r,
            "bound": BF16_MSE_RTOL,
            "within_bound": r <= BF16_MSE_RTOL,
        }
        for r in rel
    ]


BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


@contextlib.contextmanager
def batch_statistics(model: nn.Module):
    """Every BatchNorm layer normalises by the statistics of the batch it sees, without reading
    or updating its running statistics (``num_batches_tracked`` included): training mode with
    tracking switched off, restored on exit."""
    layers = [m for m in model.modules() if isinstance(m, BATCHNORMS)]
    saved = [(m.training, m.track_running_stats) for m in layers]
    for m in layers:
        m.training, m.track_running_stats = True, False
    try:
        yield
    finally:
        for m, (training, track) in zip(layers, saved, strict=True):
            m.training, m.track_running_stats = training, track


def predict(
    model: nn.Module,
    data: EvalData,
    chunks: list[Tensor],
    bf16: bool = False,
    protocol: str = "standard",
) -> Tensor:
    """Predictions (P, M) (model units, the model's dtype) for the test chunks without
    autograd, in eval mode; ``protocol="original"``: BatchNorm with each chunk's own
    statistics."""
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if use_bf16(bf16, chunks[0])
        else contextlib.nullcontext()
    )
    stats = batch_statistics(model) if protocol == "original" else contextlib.nullcontext()
    with torch.inference_mode(), autocast, eval_mode(model), stats:
        outputs = []
        for x in chunks:
            outputs.append(model(data.inputs(x)))
        dtype = data.y_test.dtype
        pred = (outputs[0] if len(outputs) == 1 else torch.cat(outputs, 1)).to(dtype)
    return pred


#: Layers that compute differently in eval mode.
_MODAL_LAYERS = (nn.modules.batchnorm._NormBase, nn.modules.dropout._DropoutNd)
#: Per model: whether it has such a layer (switching modes walks all of its modules).
_MODAL: weakref.WeakKeyDictionary[nn.Module, bool] = weakref.WeakKeyDictionary()


@contextlib.contextmanager
def eval_mode(model: nn.Module):
    """The model in eval mode inside, in train mode after; a model whose layers all compute
    the same in both modes is left alone."""
    if model not in _MODAL:
        _MODAL[model] = any(isinstance(m, _MODAL_LAYERS) for m in model.modules())
    if not _MODAL[model]:
        yield
        return
    model.eval()
    try:
        yield
    finally:
        model.train()


def evaluate(
    model: nn.Module,
    data: EvalData,
    chunks: list[Tensor],
    *,
    test_batch: int,
    bf16: bool = False,
    protocol: str = "standard",
) -> Tensor:
    """(P, 2): each member's sum of squared and of absolute errors on the test labels, float64.
    ``protocol="original"``: n_test x (the mean over the test batches of ``test_batch`` rows of
    each batch's mean squared and absolute error), so that dividing by n_test gives the
    original's logged test loss. ``chunks``: the pieces the model runs on (:func:`passes`)."""
    with torch.inference_mode():
        err = predict(model, data, chunks, bf16, protocol) - data.y_test
        if protocol == "standard":
            return _sums(err)
        # (P, 2, batches): each mean over contiguous values, summed in the same order for
        # every pack size
        per_batch = torch.stack([_sums(e) / e.shape[1] for e in err.split(test_batch, 1)], -1)
        return per_batch.mean(-1) * err.shape[1]


#: The values of one layer's outputs (all members) in a pass of :func:`passes`: per CPU thread
#: (its cache: measured fastest for Bike packs of 1, 5 and 20), or on a GPU.
PASS_VALUES_PER_THREAD, PASS_VALUES_GPU = 2**18, 2**24


def passes(model: nn.Module, x_test: Tensor, test_batch: int, protocol: str) -> list[Tensor]:
    """The pieces of the test inputs the pack's model is run on. The test batches (``test_batch``
    rows) for images, and where a batch's predictions depend on the batch (BatchNorm with each
    batch's statistics: the original protocol); otherwise pieces whose widest layer outputs about
    ``PASS_VALUES_PER_THREAD`` values per thread for all members: a row's prediction does not
    depend on the rows computed with it (tested), and a pass costs a few operations per layer
    whatever its size."""
    batch_dependent = protocol == "original" and any(
        isinstance(m, BATCHNORMS) for m in model.modules()
    )
    if x_test.ndim != 2 or batch_dependent:
        return list(x_test.split(test_batch))
    # a stacked layer's weight is (members, outputs, inputs)
    widest = max((p.shape[0] * p.shape[1] for p in model.parameters() if p.ndim == 3), default=1)
    values = PASS_VALUES_GPU if x_test.is_cuda else PASS_VALUES_PER_THREAD * torch.get_num_threads()
    return list(x_test.split(max(1, values // widest)))


def _sums(err: Tensor) -> Tensor:
    squared = err.square().sum(1, dtype=torch.float64)
    return torch.stack((squared, err.abs().sum(1, dtype=torch.float64)), 1)
