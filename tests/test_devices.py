"""biv.train.devices: exact float32 on CUDA, set and read through one TF32 API."""

from __future__ import annotations

import pytest
import torch

from biv.train import devices
from biv.train.devices import exact_float32, float32_flags

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


# ------------------------------------------------------------------------------- GPU guard

SLURM_GPU = {"SLURM_JOB_GPUS": "0", "SLURM_GPUS_ON_NODE": "1", "CUDA_VISIBLE_DEVICES": "0"}


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.parametrize(
    ("env", "given"),
    [
        ({}, {}),
        (SLURM_GPU, SLURM_GPU),
        ({"SLURM_GPUS_ON_NODE": "0", "SLURM_JOB_GPUS": ""}, {}),
        ({"CUDA_VISIBLE_DEVICES": ""}, {}),
        ({"CUDA_VISIBLE_DEVICES": "-1"}, {}),
        ({"CUDA_VISIBLE_DEVICES": "NoDevFiles"}, {}),  # Slurm's word for none
        ({"CUDA_VISIBLE_DEVICES": "GPU-3f2a"}, {"CUDA_VISIBLE_DEVICES": "GPU-3f2a"}),
        ({"SLURM_GPUS_ON_NODE": "2"}, {"SLURM_GPUS_ON_NODE": "2"}),
    ],
)
def test_given_gpus(env, given):
    assert devices.given_gpus(env) == given


def test_a_job_given_gpus_without_cuda_stops_before_any_work(no_cuda):
    for name in ("auto", "cuda"):
        with pytest.raises(devices.GpuUnavailableError) as err:
            devices.resolve_device(name, SLURM_GPU)
        message = str(err.value)
        assert message.startswith(f"training.device: {name!r} on ")
        assert "SLURM_JOB_GPUS=0, SLURM_GPUS_ON_NODE=1, CUDA_VISIBLE_DEVICES=0" in message
        assert f"torch {torch.__version__}" in message and "nvidia-smi" in message
        assert "Training stops before its first step rather than run on the CPU" in message


def test_without_gpus_given_auto_is_the_cpu(no_cuda, caplog):
    assert devices.resolve_device("auto", {}) == CPU
    assert devices.resolve_device("cpu", SLURM_GPU) == CPU  # asked for: no guard
    with pytest.raises(ValueError, match="training.device: 'cuda' is not allowed"):
        devices.resolve_device("cuda", {})
    fake = SLURM_GPU | {devices.FAKE_GPUS: "1"}  # the CI cluster's GPUs are /dev/null
    with caplog.at_level("WARNING", logger="biv.train.devices"):
        assert devices.resolve_device("auto", fake) == CPU
    assert "BIV_TEST_FAKE_GPUS=1 (test-only): the GPUs given" in caplog.text


def test_biv_train_in_a_job_given_gpus_it_cannot_use_fails_loudly(toy, tmp_path):
    """The issue's reproduction: `biv train` with Slurm's GPU variables set on a machine whose
    CUDA cannot use them (here: a device name no GPU has) exits 1, naming the variables, and
    trains nothing."""
    import json
    import os
    import subprocess
    import sys

    params = tmp_path / "params.json"
    params.write_text(json.dumps(toy.params(tmp_path)))
    gpus = SLURM_GPU | {"CUDA_VISIBLE_DEVICES": "GPU-00000000-0000-0000-0000-000000000000"}
    env = {k: v for k, v in os.environ.items() if k != devices.FAKE_GPUS} | gpus
    proc = subprocess.run(
        [sys.executable, "-m", "biv.cli", "train", str(params), str(tmp_path / "run")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1, proc.stderr
    assert "this job was given GPUs (SLURM_JOB_GPUS=0, SLURM_GPUS_ON_NODE=1, " in proc.stderr
    assert not (tmp_path / "run").exists()
