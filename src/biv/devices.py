"""Which device a run trains on, its name for the run record, and deterministic, exact float32
computation on CUDA."""

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


def determinism(device: torch.device) -> dict:
    """Deterministic cuDNN and exact float32 (no TF32) on CUDA; the flags, for the run record."""
    float32 = exact_float32(device)
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return {
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "torch_num_threads": torch.get_num_threads(),
        **float32,
    }


#: torch >= 2.9 sets and reads TF32 per backend and operator (``fp32_precision``); once that API
#: has set a flag, reading a legacy one (``cudnn.allow_tf32``, ``get_float32_matmul_precision``)
#: may raise ("mixed TF32 flags"), so each torch uses one API for both.
_NEW_API = hasattr(torch.backends.cuda.matmul, "fp32_precision")


def exact_float32(device: torch.device) -> dict:
    """On CUDA, float32 matrix products and convolutions in full float32, not TF32 (PyTorch lets
    cuDNN convolutions use TF32 by default): a GPU run reports the metric a CPU run would, within
    float32 round-off. Returns :func:`float32_flags`, for the run record."""
    backends = torch.backends
    if device.type == "cuda":
        if _NEW_API:
            backends.cuda.matmul.fp32_precision = "ieee"
            backends.cudnn.conv.fp32_precision = "ieee"
        else:
            backends.cuda.matmul.allow_tf32 = False
            backends.cudnn.allow_tf32 = False
    return float32_flags()


def float32_flags() -> dict:
    """Whether CUDA float32 matrix products and cuDNN convolutions may use TF32, read through
    the API that :func:`exact_float32` sets them with."""
    backends = torch.backends
    if not _NEW_API:
        return {
            "matmul_tf32": bool(backends.cuda.matmul.allow_tf32),
            "cudnn_conv_tf32": bool(backends.cudnn.allow_tf32),
        }
    # an operator's "none" defers to its backend's setting, then to the global one
    top = backends.fp32_precision
    matmul = _precision(backends.cuda.matmul.fp32_precision, top)
    conv = _precision(backends.cudnn.conv.fp32_precision, backends.cudnn.fp32_precision, top)
    return {"matmul_tf32": matmul == "tf32", "cudnn_conv_tf32": conv == "tf32"}


def _precision(*levels: str) -> str:
    """The first setting that is not "none", from the operator up ("ieee" if all are)."""
    return next((level for level in levels if level != "none"), "ieee")
