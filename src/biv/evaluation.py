"""Test-set predictions and error sums of a training run, in eval mode under inference_mode.

On CUDA, image batches are fed channels_last and, when ``bf16`` is true (opt-in) and the GPU
computes bfloat16 natively, run under bfloat16 autocast (predictions returned as float32). On the
CPU, and for feature inputs, the computation is plain float32.
"""

from __future__ import annotations

import contextlib
from typing import Protocol

import torch
from torch import Tensor, nn


class EvalData(Protocol):
    """What evaluation needs of ``biv.run_data.RunData``."""

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


def predict(model: nn.Module, data: EvalData, chunks: list[Tensor], bf16: bool = False) -> Tensor:
    """Predictions (model units, float32) for the test chunks, in eval mode without autograd."""
    channels_last = chunks[0].is_cuda and chunks[0].ndim == 4
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if use_bf16(bf16, chunks[0])
        else contextlib.nullcontext()
    )
    model.eval()
    with torch.inference_mode(), autocast:
        outputs = []
        for x in chunks:
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            outputs.append(model(data.inputs(x)).float())
        pred = (outputs[0] if len(outputs) == 1 else torch.cat(outputs)).squeeze(1)
    model.train()
    return pred


def evaluate(model: nn.Module, data: EvalData, chunks: list[Tensor], bf16: bool = False) -> Tensor:
    """(sum of squared errors, sum of absolute errors) on the clean test labels, float64."""
    with torch.inference_mode():
        err = predict(model, data, chunks, bf16) - data.y_test
        return torch.stack(
            (err.square().sum(dtype=torch.float64), err.abs().sum(dtype=torch.float64))
        )
