"""Resume through the workflow, the way users meet kills: a training job of a real `snakemake`
run is SIGKILLed after its first checkpoint (as Slurm does at a time limit, or a crash), then the
same command is run again.

- Rerun unchanged: the job resumes from the checkpoint and writes the bytes of an uninterrupted run.
- Snakemake itself killed too: after `--unlock` (Snakemake's own stale-lock rule) the same.
- Config edited in between (the loss's epsilon): the stale checkpoint is deleted with a line in
  the job's log and the run trains from step 0, to the end.

The uninterrupted reference runs once per module (``reference``, read-only); each test kills and
resumes in a folder of its own (``workdir``), so that each passes alone and in any order."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

PACK = "results/runs/long/biv/seeds1-5"  # the output folder of the run's pack
RUN = f"{PACK}/seed1"
CHECKPOINT = "results/checkpoints/long/biv/seeds1-5/checkpoint.pt"  # outside the output
JOB_LOG = "results/logs/train/long/biv/seeds1-5.log"
CONFIG = {
    "datasets": {"syn": {"kind": "synthetic", "n_train": 2000, "n_test": 500, "seed": 0}},
    "noise": {
        "spread": {
            "mode": "meanvar",
            "distribution": "uniform",
            "p": 0.5,
            "components": [{"mean": 0.05, "var_scale": 1.0}, {"mean": 4.0, "var_scale": 1.0}],
        }
    },
    "models": {"mlp": {"name": "mlp", "hidden": [64, 32], "batchnorm": False}},
    "losses": {"biv": {"type": "biv", "epsilon": 0.1}},
    "experiments": {
        "long": {  # 3,780 steps with a checkpoint every 100: seconds, killed long before the end
            "dataset": "syn",
            "model": "mlp",
            "noise": "spread",
            "losses": ["biv"],
            "seeds": [1],
            "training": {"batch_size": 32, "epochs": 60, "eval_every": 10, "checkpoint_every": 100},
        }
    },
}
COMMAND = [sys.executable, "-m", "snakemake", "--cores", "1", "--configfile", "resume.yaml"]
TIMEOUT = 300


def workflow(root: Path, epsilon: float = 0.1) -> Path:
    """The config, with this epsilon, written into the workflow copied into ``root``."""
    config = json.loads(json.dumps(CONFIG))
    config["losses"]["biv"]["epsilon"] = epsilon
    (root / "resume.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*COMMAND, *args], cwd=workdir, capture_output=True, text=True, timeout=TIMEOUT
    )


def finished(workdir: Path) -> None:
    proc = snakemake(workdir)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]


def killed_after_first_checkpoint(workdir: Path, whole_snakemake: bool = False) -> None:
    """Start the command, and once the pack's first checkpoint exists, SIGKILL the training job's
    processes (or the whole process group: Snakemake too)."""
    checkpoint = workdir / CHECKPOINT
    with (workdir / "killed.log").open("w") as out:
        proc = subprocess.Popen(
            COMMAND, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + TIMEOUT
    while not checkpoint.exists():  # written atomically: it exists only once complete
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no checkpoint before the end:\n{(workdir / 'killed.log').read_text()}")
        time.sleep(0.01)
    if whole_snakemake:
        os.killpg(proc.pid, signal.SIGKILL)
    else:
        for child in psutil.Process(proc.pid).children(recursive=True):
            child.kill()
    assert proc.wait(timeout=TIMEOUT) != 0
    assert checkpoint.exists()
    # nothing of the pack's outputs is left behind: Snakemake sees no incomplete files
    assert not (workdir / PACK).exists()


def resumed_from(workdir: Path) -> list[int]:
    text = (workdir / JOB_LOG).read_text()
    return [int(n) for n in re.findall(r"resuming after step (\d+)", text)]


def same_results(a: Path, b: Path) -> None:
    for name in ("metrics.csv", "predictions.csv", "params.json"):
        assert (a / RUN / name).read_bytes() == (b / RUN / name).read_bytes(), name


@pytest.fixture(scope="module")
def reference(copy_workflow, tmp_path_factory) -> Path:
    """The same command, never interrupted. Read-only: the tests compare with its files."""
    root = workflow(copy_workflow(tmp_path_factory.mktemp("reference")))
    finished(root)
    return root


@pytest.fixture
def workdir(copy_workflow, tmp_path) -> Path:
    """A folder of the test's own: the workflow and the config, nothing run yet."""
    return workflow(copy_workflow(tmp_path / "killed"))


def test_killed_training_job_resumes_to_the_bytes_of_an_uninterrupted_run(workdir, reference):
    killed_after_first_checkpoint(workdir)
    finished(workdir)
    steps = resumed_from(workdir)
    assert len(steps) == 1 and steps[0] >= 100
    assert json.loads((workdir / RUN / "run.json").read_text())["run"]["resumed_from_step"] > 0
    same_results(workdir, reference)
    assert not (workdir / CHECKPOINT).exists()


def test_killed_snakemake_resumes_after_unlock(workdir, reference):
    killed_after_first_checkpoint(workdir, whole_snakemake=True)
    locked = snakemake(workdir)
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
    assert snakemake(workdir, "--unlock").returncode == 0
    finished(workdir)  # no --rerun-incomplete needed: the killed job left no outputs
    assert resumed_from(workdir) and resumed_from(workdir)[0] >= 100
    same_results(workdir, reference)


def test_config_edit_after_a_kill_discards_the_checkpoint_and_finishes(workdir):
    workflow(workdir, epsilon=0.2)
    killed_after_first_checkpoint(workdir)
    workflow(workdir, epsilon=0.3)
    finished(workdir)
    log = (workdir / JOB_LOG).read_text()
    assert re.search(
        r"WARNING biv.train.loop: checkpoint '.*checkpoint\.pt' was written for other run "
        r"parameters "
        r"\(differing: \['loss'\]\): deleted, training starts from step 0",
        log,
    ), log
    run = json.loads((workdir / RUN / "run.json").read_text())
    assert run["loss"]["epsilon"] == 0.3 and run["run"]["resumed_from_step"] == 0
    assert json.loads((workdir / RUN / "summary.json").read_text())["steps"] == 3780
    assert not (workdir / CHECKPOINT).exists()
