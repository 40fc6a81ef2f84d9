"""Shared fixtures. Tests that need the real datasets use ``data_dir``: they run whenever
BIV_DATA_DIR is set (CI sets it) and are skipped only when it is not."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session")
def data_dir() -> Path:
    value = os.environ.get("BIV_DATA_DIR")
    if not value:
        pytest.skip("BIV_DATA_DIR is not set: real-data test not run")
    path = Path(value)
    if not path.is_dir():
        raise FileNotFoundError(f"BIV_DATA_DIR={value!r} is not a folder")
    return path


ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ["Snakefile", "rules", "scripts", "config", "report", "envs"]


def copy_workflow(root: Path) -> Path:
    """A copy of the workflow files in ``root`` (a scratch working folder for snakemake)."""
    for name in WORKFLOW:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name)
        else:
            shutil.copy2(source, root / name)
    return root


@pytest.fixture
def one_torch_thread():
    """Tiny models: one intra-op thread avoids OpenMP stalls on a busy shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
