"""The workflow runs its own code: jobs import `biv` from the workflow's src/ (the Snakefile puts
it first on sys.path and on every job's PYTHONPATH), never from an installed copy, as the conda
env and the container hold the dependencies only; with --software-deployment-method apptainer
every job runs in the image containers/biv.sif."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
PACK = "results/runs/noisy/biv/seeds1-5"  # one pack's run folders: one job of each rule
RULES = ("prepare_dataset", "estimate_noise", "draw_noise", "train")  # all script: rules
TIMEOUT = 600

# Stands in for Apptainer, which CI lacks: records how Snakemake calls it and runs the command
# on the host, with the caller's environment (Apptainer passes it into the container too).
FAKE_APPTAINER = f"""#!{sys.executable}
import json, os, sys
if sys.argv[1:] == ["--version"]:
    sys.exit(print("apptainer version 1.3.4"))
with open(os.environ["FAKE_APPTAINER_LOG"], "a") as log:
    log.write(json.dumps([os.environ["PYTHONPATH"], *sys.argv[1:]]) + "\\n")
shell, flag, command = sys.argv[-3:]
os.execvp(shell, [shell, flag, command])
"""


def run_one_run(copy_workflow, tmp_path: Path, env: dict[str, str], *args: str) -> Path:
    """The workflow copied into `tmp_path`, run with the tiny config up to one pack's run
    folders."""
    workdir = copy_workflow(tmp_path / "workflow")
    for name in ("tiny.yaml", "tiny-reference.yaml"):
        shutil.copy2(ROOT / "tests" / "configs" / name, workdir / name)
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", PACK, *args, "--cores", "2"]
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
    assert (workdir / PACK / "seed1" / "summary.json").stat().st_size > 0
    return workdir


def test_jobs_import_the_workflows_src_not_another_biv(tmp_path, copy_workflow):
    """A `biv` that fails on import comes first on the PYTHONPATH Snakemake starts with, before
    any installed one: the Snakefile's parse-time import and the `script:` jobs must all find
    the workflow's src/ before it."""
    decoy = tmp_path / "decoy"
    (decoy / "biv").mkdir(parents=True)
    (decoy / "biv" / "__init__.py").write_text("raise ImportError('not the workflow src/ biv')\n")
    run_one_run(copy_workflow, tmp_path, {"PYTHONPATH": str(decoy)})


def test_apptainer_runs_every_job_in_the_workflows_image(tmp_path, copy_workflow):
    """With --software-deployment-method apptainer each job is `apptainer exec` of
    containers/biv.sif with the working directory as home (so it is bound) and the workflow's
    src/ on the PYTHONPATH it passes in. The image itself is not built here."""
    bin_dir, log = tmp_path / "bin", tmp_path / "apptainer.log"
    bin_dir.mkdir()
    (bin_dir / "apptainer").write_text(FAKE_APPTAINER)
    (bin_dir / "apptainer").chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_APPTAINER_LOG": str(log)}
    workdir = run_one_run(copy_workflow, tmp_path, env, "--software-deployment-method", "apptainer")
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(calls) == len(RULES)  # one job of each rule, each in the container
    for pythonpath, *argv in calls:
        assert pythonpath.split(os.pathsep)[0] == str(workdir / "src")
        assert argv[:3] == ["exec", "--home", str(workdir)]
        assert argv[-4] == "containers/biv.sif"
