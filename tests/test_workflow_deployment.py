"""The workflow runs its own code: jobs import `biv` from the workflow's src/ (the Snakefile puts
it first on sys.path and on every job's PYTHONPATH), never from an installed copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import copy_workflow

ROOT = Path(__file__).resolve().parents[1]
RUN = "results/runs/noisy/biv/seed1"  # prepare_dataset, estimate_noise, train: script: rules
RULES = ("prepare_dataset", "estimate_noise", "train", "run_folder")  # run_folder: shell:
TIMEOUT = 600


def run_one_run(tmp_path: Path, env: dict[str, str]) -> Path:
    """The workflow copied into `tmp_path`, run with the tiny config up to one run folder."""
    workdir = copy_workflow(tmp_path / "workflow")
    for name in ("tiny.yaml", "tiny-reference.yaml"):
        shutil.copy2(ROOT / "tests" / "configs" / name, workdir / name)
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", f"{RUN}/summary.json", "--cores", "2"]
        + ["--configfile", "tiny.yaml"],
        cwd=workdir,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    for rule in RULES:
        assert f"rule {rule}:" in output, f"{rule} did not run:\n{output[-3000:]}"
    assert (workdir / RUN / "summary.json").stat().st_size > 0
    return workdir


def test_jobs_import_the_workflows_src_not_another_biv(tmp_path):
    """A `biv` that fails on import comes first on the PYTHONPATH Snakemake starts with, before
    any installed one: the Snakefile's parse-time import, the `script:` jobs and the `shell:`
    job run_folder (`python -m biv.packs`) must all find the workflow's src/ before it."""
    decoy = tmp_path / "decoy"
    (decoy / "biv").mkdir(parents=True)
    (decoy / "biv" / "__init__.py").write_text("raise ImportError('not the workflow src/ biv')\n")
    run_one_run(tmp_path, {"PYTHONPATH": str(decoy)})
