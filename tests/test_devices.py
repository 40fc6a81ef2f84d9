"""biv.devices: exact float32 on CUDA, set and read through one TF32 API."""

from __future__ import annotations

import pytest
import torch

from biv import devices
from biv.devices import exact_float32, float32_flags

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
EXACT = {"matmul_tf32": False, "cudnn_conv_tf32": False}
NEW_API = ("fp32_precision", "cuda.matmul.fp32_precision", "cudnn.fp32_precision")
NEW_API += ("cudnn.conv.fp32_precision", "cudnn.rnn.fp32_precision")

needs_new_api = pytest.mark.skipif(
    not devices._NEW_API, reason="torch < 2.9 has only the legacy allow_tf32 flags"
)


@pytest.fixture
def restored_flags():
    """The TF32 settings as they were (the global one first: setting it sets the others)."""

    def owner(name):
        *path, leaf = ["backends", *name.split(".")]
        obj = torch
        for part in path:
            obj = getattr(obj, part)
        return obj, leaf

    saved = [(owner(name), getattr(*owner(name))) for name in NEW_API]
    yield
    for (obj, leaf), value in saved:
        setattr(obj, leaf, value)


def test_the_tests_run_with_the_production_flags():
    """conftest sets what a CUDA training run sets: no TF32 anywhere, deterministic cuDNN."""
    assert float32_flags() == EXACT
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark


@needs_new_api
def test_exact_float32_from_pytorchs_defaults(restored_flags):
    torch.backends.cudnn.conv.fp32_precision = "tf32"  # PyTorch's default
    torch.backends.cuda.matmul.fp32_precision = "tf32"
    assert exact_float32(CPU) == {"matmul_tf32": True, "cudnn_conv_tf32": True}  # unchanged
    assert exact_float32(CUDA) == EXACT
    assert torch.backends.cudnn.conv.fp32_precision == "ieee"
    assert torch.backends.cuda.matmul.fp32_precision == "ieee"


@needs_new_api
def test_flags_are_read_through_the_api_that_set_them(restored_flags):
    """After exact_float32, torch's legacy readers raise ("mixed TF32 flags"); float32_flags
    reads the new API, where an operator's own setting outranks the global one."""
    exact_float32(CUDA)
    with pytest.raises(RuntimeError, match="TF32"):
        _ = torch.backends.cudnn.allow_tf32
    assert float32_flags() == EXACT
    torch.backends.fp32_precision = "tf32"
    with pytest.raises(RuntimeError, match="matmul precision"):
        torch.get_float32_matmul_precision()
    assert float32_flags() == EXACT


@needs_new_api
def test_an_operator_left_at_none_follows_its_backend(restored_flags):
    torch.backends.cudnn.conv.fp32_precision = "none"
    torch.backends.cudnn.fp32_precision = "tf32"
    torch.backends.cudnn.conv.fp32_precision = "none"
    assert float32_flags()["cudnn_conv_tf32"]
    torch.backends.cudnn.fp32_precision = "ieee"
    torch.backends.cudnn.conv.fp32_precision = "none"
    assert not float32_flags()["cudnn_conv_tf32"]
