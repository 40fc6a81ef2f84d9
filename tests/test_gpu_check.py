"""The GPU check's CPU rehearsal (bench/gpu_check.py), run as on the lent GPU machine: from a copy
of the working tree, PYTHONPATH=src, nothing installed for it, and only the imports that machine
can satisfy (tests/gpu_machine/sitecustomize.py). Every section runs at reduced size up to its
first CUDA-only call; an import, a path, a file or an argument that would fail on the GPU machine
fails here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """A copy of the working tree's files (tracked, and untracked ones git does not ignore)."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    copy = tmp_path_factory.mktemp("tree")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    return copy


def gpu_machine_env(tree: Path) -> dict:
    """No GPU, and the GPU machine's imports for the project's code in ``tree``."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BIV_DATA_DIR")}
    return env | {
        "PYTHONPATH": str(tree / "tests" / "gpu_machine"),
        "BIV_GPU_MACHINE_ROOT": str(tree),
        "CUDA_VISIBLE_DEVICES": "",
    }


def test_the_stand_in_refuses_what_the_gpu_machine_lacks(tree):
    """The project's code cannot import jsonschema there (biv.config.validation does, for the
    config check); torch, pandas and yaml it can."""
    env = gpu_machine_env(tree) | {"PYTHONPATH": f"{tree / 'tests/gpu_machine'}:{tree / 'src'}"}
    code = (
        "import biv.train.models, biv.train.loop\n"
        "from biv.config.validation import validated; validated({})"
    )
    proc = subprocess.run(
        ["python3", "-c", code], cwd=tree, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert "No module named 'jsonschema' on the GPU machine (imported by " in proc.stderr
    assert f"{tree / 'src/biv/config/validation.py'}" in proc.stderr


@pytest.mark.slow
def test_the_gpu_check_rehearses_every_section_on_the_cpu(tree, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        ["bash", "bench/gpu_check.sh", str(out)],
        cwd=tree,
        env=gpu_machine_env(tree),
        capture_output=True,
        text=True,
        timeout=600,
    )
    verdict = json.loads((out / "gpu_check.json").read_text())
    failed = [i for i in verdict["items"] if i["status"] == "FAIL"]
    assert proc.returncode == 2, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert failed == [] and verdict["meaning"] == "no GPU: rehearsal passed"
    assert (out / "gpu_check.log").read_text().strip().endswith("exit status 2")
    # every section ran on the CPU until its first CUDA-only call; CUDA-only items not run
    outcomes = {name: s["outcome"] for name, s in verdict["sections"].items()}
    assert len(outcomes) == 10
    assert set(outcomes.values()) <= {"ran", "stopped at its first CUDA-only call (no GPU)"}
    statuses = {i["status"] for i in verdict["items"]}
    assert statuses == {"PASS", "NOT RUN"}
    passed = {i["section"] for i in verdict["items"] if i["status"] == "PASS"}
    assert passed >= {"tf32", "one step", "cuda graphs", "cuda vs cpu", "full size", "cuda tests"}
    # the versions the GPU machine's differ in, and the package from the copy, not the checkout
    assert {"python", "torch", "torch_cuda_build"} <= verdict["versions"].keys()
    assert verdict["versions"]["biv_from"] == str(tree / "src" / "biv")
