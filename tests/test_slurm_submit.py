"""What `--profile profiles/slurm` submits, without a cluster: stand-ins for sbatch, squeue and
the other Slurm commands (tests/slurm/fake) record each sbatch call and keep its job pending;
the run is stopped once the calls expected are made. Real clusters' compute nodes often have no
network: downloads must be local jobs, and requests must fit the partitions."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]

ROOT = Path(__file__).resolve().parents[1]

FAKE = ROOT / "tests" / "slurm" / "fake"
PROFILES = ["--profile", "profiles/slurm", "--profile", "profiles/slurm-site-example"]


def submit(workdir: Path, configfile: str, jobs: int, timeout: float = 180) -> list[list[str]]:
    """Run the workflow through the Slurm profile and the site example until ``jobs`` sbatch
    calls are made; each call's arguments."""
    log = workdir / "sbatch.log"
    env = os.environ | {"PATH": f"{FAKE}:{os.environ['PATH']}", "FAKE_SLURM_LOG": str(log)}
    env.pop("SNAKEMAKE_PROFILE", None)
    cmd = [sys.executable, "-m", "snakemake", *PROFILES, "--configfile", configfile]
    with (workdir / "snakemake.log").open("w") as out:
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    calls = []
    while time.monotonic() < deadline and proc.poll() is None and len(calls) < jobs:
        time.sleep(0.5)
        calls = log.read_text().splitlines() if log.exists() else []
    proc.send_signal(signal.SIGINT)  # Snakemake scancels its jobs (a stand-in) and stops
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
    assert len(calls) == jobs, (workdir / "snakemake.log").read_text()[-4000:]
    return [shlex.split(line.split("\t", 1)[1]) for line in calls]


def option(args: list[str], name: str) -> str | None:
    """The value of ``name`` (``-t``, ``-p``, ``--gpus``, ...) in an sbatch call."""
    for i, arg in enumerate(args):
        if arg == name:
            return args[i + 1]
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
    return None


def test_paper_downloads_on_the_submit_host_and_prepares_within_an_hour(
    data_dir, tmp_path, bike_files, copy_workflow, make_zip, workflow_files
):
    """config/paper.yaml: the Bike zip is a local job (here it is in the download cache
    already, so no network is used); the preparation and noise estimates, one group job, ask
    for at most an hour, on the CPU partition, with no GPU, requeueable."""
    workdir = copy_workflow(tmp_path, (*workflow_files, "profiles"))
    cache = workdir / "resources" / "downloads"
    cache.mkdir(parents=True)
    make_zip(cache / "bike+sharing+dataset.zip", bike_files)
    (prep,) = submit(workdir, "config/paper.yaml", jobs=1)
    assert option(prep, "--comment") == "rule_prep_estimate_noise_prepare_dataset"
    assert int(option(prep, "-t")) <= 60
    assert option(prep, "-p") == "cpu" and option(prep, "--gpus") is None
    assert "--requeue" in prep  # Slurm may queue a preempted job again
    run_log = (workdir / "snakemake.log").read_text()
    assert "localrule download:" in run_log
    record = yaml.safe_load(
        (workdir / "results/downloads/bike+sharing+dataset.zip.json").read_text()
    )
    assert record["sha256"]["bike"]["hour.csv"].startswith("e03de4ee")


def test_cpu_trainings_ask_for_no_gpu_under_a_site_gpu_model(
    tmp_path, copy_workflow, workflow_files
):
    """With the site example's `gpu_model` for GPU trainings, a CPU experiment's pack is a
    `train_cpu` job: CPU partition, no --gpus (`--gpus=a100:0` before); GPU packs get
    `--gpus=a100:1` in the GPU partition."""
    workdir = copy_workflow(tmp_path, (*workflow_files, "profiles"))
    config = yaml.safe_load((ROOT / "tests/configs/tiny.yaml").read_text())
    config.pop("reproduction")
    config["sweeps"].pop("grid")  # its 8 GPU packs would fill a second GPU group job first
    config["experiments"]["clean"]["training"]["device"] = "cpu"
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(config))
    prep = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "tiny.yaml"]
    for rule in ("prepare_dataset", "estimate_noise", "draw_noise", "plot_noise"):  # locally first
        subprocess.run([*prep, "--until", rule], cwd=workdir, check=True, capture_output=True)
    calls = submit(workdir, "tiny.yaml", jobs=2)  # the GPU group job and the CPU group job
    by_group = {re.sub(r"_\w+$", "", option(c, "--comment")): c for c in calls}
    assert set(by_group) == {"rule_train-mlp", "rule_train-cpu"}, calls
    gpu, cpu = by_group["rule_train-mlp"], by_group["rule_train-cpu"]
    assert option(gpu, "--gpus") == "a100:1" and option(gpu, "-p") == "gpu"
    assert option(cpu, "--gpus") is None and option(cpu, "-p") == "cpu"
    assert option(cpu, "--cpus-per-task") == "2"
