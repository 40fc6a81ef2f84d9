"""Which device a run trains on (a job given GPUs never trains on the CPU), its name for the run
record, and deterministic, exact float32 computation on CUDA."""

from __future__ import annotations

import logging
import os
import platform
import socket
from collections.abc import Mapping
from pathlib import Path

import torch

log = logging.getLogger("biv.train.devices")

#: The variables by which Slurm (or a user) gives a process GPUs.
GPU_VARIABLES = ("SLURM_JOB_GPUS", "SLURM_GPUS_ON_NODE", "CUDA_VISIBLE_DEVICES")
#: Test-only: set to 1 where the GPUs a job is given are not real (the CI cluster of
#: tests/slurm, whose GPUs are /dev/null): such a job trains on the CPU, with a warning.
FAKE_GPUS = "BIV_TEST_FAKE_GPUS"


class GpuUnavailableError(RuntimeError):
    """A job was given GPUs, but CUDA cannot be used: it must not train on the CPU instead."""


def resolve_device(name: str, env: Mapping[str, str] | None = None) -> torch.device:
    """The device of ``training.device`` (``auto``, ``cpu`` or ``cuda``). ``auto`` is CUDA where
    it is usable, else the CPU, except in a job that was given GPUs (:func:`given_gpus` of
    ``env``, default the process's): that raises :class:`GpuUnavailableError` before any work
    rather than burn the GPU allocation on a CPU run."""
    if name == "cpu" or torch.cuda.is_available():
        return torch.device("cuda" if name == "auto" else name)
    env = os.environ if env is None else env
    given = given_gpus(env)
    if given and env.get(FAKE_GPUS) != "1":
        raise GpuUnavailableError(_unusable_gpu_message(name, given))
    if name == "cuda":
        raise ValueError(
            f"training.device: {name!r} is not allowed; expected 'auto' or 'cpu': CUDA is not "
            "available on this machine"
        )
    if given:
        log.warning(
            "%s=1 (test-only): the GPUs given (%s) are fake; training on the CPU", FAKE_GPUS, given
        )
    return torch.device("cpu")


def given_gpus(env: Mapping[str, str]) -> dict[str, str]:
    """The variables of ``env`` that give this process GPUs: ``SLURM_JOB_GPUS`` set,
    ``SLURM_GPUS_ON_NODE`` above 0, ``CUDA_VISIBLE_DEVICES`` naming a device (not empty, not
    "-1" or Slurm's "NoDevFiles")."""
    given = {}
    for name in GPU_VARIABLES:
        value = env.get(name, "").strip()
        if name == "SLURM_GPUS_ON_NODE":
            gives = value.isdigit() and int(value) > 0
        elif name == "CUDA_VISIBLE_DEVICES":
            gives = value not in ("", "NoDevFiles") and not value.startswith("-")
        else:
            gives = value not in ("", "(null)")
        if gives:
            given[name] = value
    return given


def _unusable_gpu_message(name: str, given: dict[str, str]) -> str:
    try:
        torch.cuda.init()
        reason = "torch.cuda.is_available() is False"
    except Exception as err:  # the reason CUDA cannot start, as torch words it
        reason = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "no CUDA: a CPU-only build"
    variables = ", ".join(f"{k}={v}" for k, v in given.items())
    return (
        f"training.device: {name!r} on {socket.gethostname()}: this job was given GPUs "
        f"({variables}) but CUDA cannot be used ({reason}). Training stops before its first "
        f"step rather than run on the CPU. Check that torch {torch.__version__} is a CUDA build "
        f"(it has {build}), that the node's NVIDIA driver (nvidia-smi) supports that CUDA "
        "version, and that the job loads the cluster's CUDA or driver module if it needs one "
        "(profiles/slurm/README.md)"
    )


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
