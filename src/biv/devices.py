"""Which device a run trains on, its name for the run record, and exact float32 on CUDA."""

from __future__ import annotations

import platform
from pathlib import Path

import torch


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"training.device: {name!r} is not allowed; expected 'auto' or 'cpu': CUDA is not "
            "available on this machine"
        )
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_name()


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def exact_float32(device: torch.device) -> dict:
    """On CUDA, float32 matrix products and convolutions in full float32, not TF32 (PyTorch lets
    cuDNN convolutions use TF32 by default): a GPU run reports the metric a CPU run would, within
    float32 round-off. Returns the flags in force, for the run record."""
    backends = torch.backends
    new_api = hasattr(backends.cuda.matmul, "fp32_precision")  # torch >= 2.9
    if device.type == "cuda":
        if new_api:  # the legacy flags may not be mixed with these
            backends.cuda.matmul.fp32_precision = "ieee"
            backends.cudnn.conv.fp32_precision = "ieee"
        else:
            backends.cuda.matmul.allow_tf32 = False
            backends.cudnn.allow_tf32 = False
    conv_tf32 = (
        backends.cudnn.conv.fp32_precision == "tf32" if new_api else backends.cudnn.allow_tf32
    )
    return {
        "matmul_tf32": torch.get_float32_matmul_precision() != "highest",
        "cudnn_conv_tf32": bool(conv_tf32),
    }
