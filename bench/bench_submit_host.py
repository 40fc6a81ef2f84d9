"""Submit-host work of config/paper.yaml, run by Snakemake itself: every job that is not training
or what training needs (goal: <= 2 min on a 2-core machine).

    BIV_DATA_DIR=... python bench/bench_submit_host.py [--scratch /tmp/bench-submit-host] [--keep]

In a scratch ``git worktree`` (HEAD + the working tree's files, removed afterwards): times
``snakemake -n`` on a clean ``results/``, whose job listing names every job's rule, files and
wildcards; makes up the outputs and benchmark records of the train jobs (packs) and of every job
they need (each pack's output folder with its members' run folders, seed{s}/, of the paper's
real sizes through training's own writer; empty files for what no submit-host job reads), in the
DAG's mtime order; times ``snakemake -n`` again (it must plan exactly the other jobs: none per
run) and ``snakemake --cores 1``; reads each job's time from its own ``benchmark:`` file.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
from scratch import REPO, make_scratch, remove_scratch

CONFIG = "config/paper.yaml"
GOAL_S = 120.0
TRAINING = "train"  # the rule whose jobs, and all they need, are made up
#: Made-up runs, by dataset kind: the clean test MSE (normalized) a run settles at, training
#: steps/s, label mean and standard deviation (raw units).
FLOOR = {"utkface": 0.26, "bike": 0.075}
STEPS_PER_S = {"utkface": 35.0, "bike": 180.0}
LABELS = {"utkface": (33.3, 19.9), "bike": (189.5, 181.4)}
JOB_START = re.compile(r"^\s*(?:local)?rule (\w+):$")
JOB_FIELD = re.compile(r"^\s+(input|output|benchmark|wildcards): (.*)$")


def planned_jobs(listing: str) -> list[tuple[str, dict[str, list[str]]]]:
    """(rule, {"input": files, "output": ..., "benchmark": ..., "wildcards": ...}) of every job
    in a ``snakemake -n`` listing."""
    jobs: list[tuple[str, dict]] = []
    for line in listing.splitlines():
        if start := JOB_START.match(line):
            jobs.append((start.group(1), {"input": [], "output": [], "benchmark": []}))
        elif (field := JOB_FIELD.match(line)) and jobs:
            jobs[-1][1][field.group(1)] = field.group(2).split(", ")
    return jobs


def made_up(jobs: list) -> dict[int, int]:
    """The train jobs and every job they need (by index), with their depth in the DAG."""
    producer = {f: i for i, (_, job) in enumerate(jobs) for f in job["output"] + job["benchmark"]}
    depth: dict[int, int] = {}

    def visit(i: int) -> int:
        if i not in depth:
            needed = [producer[f] for f in jobs[i][1]["input"] if f in producer]
            depth[i] = 1 + max(map(visit, needed), default=-1)
        return depth[i]

    for i, (rule, _) in enumerate(jobs):
        if rule == TRAINING:
            visit(i)
    return depth


def snakemake(root: Path, env: dict, *args: str) -> tuple[float, str]:
    """Wall seconds and output of a Snakemake call on the paper config; stops on failure."""
    cmd = [sys.executable, "-m", "snakemake", "--configfile", CONFIG, *args]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-5000:])
        raise SystemExit(f"snakemake {' '.join(args)} failed (exit {done.returncode})")
    return seconds, done.stdout + done.stderr


def write_pack(plan, job: dict) -> np.ndarray:
    """A train job's output folder: its members' run folders; returns (steps, test evaluations,
    wall s) summed."""
    from biv.train.loop import run_name
    from biv.workflow.run_folders import member_dir

    w = dict(item.split("=", 1) for item in job["wildcards"])
    pack = plan.packs[w["experiment"], w["loss"], w["pack"]]
    dataset_file, *setting = job["input"]  # the train rule's inputs: dataset, noise draws
    noise_file = setting[0] if setting else None
    names = [run_name(run) for run in pack.runs]
    out = job["output"][0]
    members = [
        write_run(plan, run, dataset_file, noise_file, member_dir(out, run.seed), names)
        for run in pack.runs
    ]
    return np.sum(members, axis=0)


def write_draws(plan, job: dict) -> None:
    """A draw_noise job's draw file, of the dataset's real number of training labels (zeros)."""
    from biv.noise.files import write_draw_file

    w = dict(item.split("=", 1) for item in job["wildcards"])
    seeds = plan.noise_draws[w["dataset"], w["noise"], w["block"]]
    labels = np.zeros(plan.datasets[w["dataset"]].n_train, dtype=np.float32)
    Path(job["output"][0]).parent.mkdir(parents=True, exist_ok=True)
    write_draw_file(job["output"][0], labels, plan.noise[w["noise"]].to_dict(), seeds)


def write_run(plan, member, dataset_file, noise_file, out: Path, pack: list[str]):
    """A pack member's run folder, written by training's own ``write_run_folder`` from made-up
    metrics of the run's real length (``pack``: the members' names, for the run record);
    returns (steps, test evaluations, wall s)."""
    import torch

    from biv.train.checkpoints import Progress, plain_params
    from biv.train.loop import write_run_folder
    from biv.train.metrics import RunMetrics
    from biv.train.run_data import RunData
    from biv.workflow.rule_params import run_spec

    run = run_spec(plan, member.experiment, member.loss_name, member.seed, dataset_file, noise_file)
    exp, tr = plan.experiments[run.experiment], run.training
    dataset = plan.datasets[exp.dataset]
    kind, n_test = dataset.config.kind, int(dataset.config.test_size)
    per_epoch = tr.steps_per_epoch(dataset.n_train)
    total = per_epoch * tr.epochs
    rng = np.random.default_rng(zlib.crc32(repr(member).encode()))
    floor = FLOOR[kind] * rng.uniform(1.0, 1.5 if exp.noise else 1.05)
    t = np.arange(1, total + 1) / total  # fast decrease, noisy plateau, slight over-fitting
    level = floor + (1.0 - floor) * np.exp(-t * 9.0) + 0.12 * floor * t**2
    test = level * rng.lognormal(0.0, 0.07 if exp.noise else 0.025, total)
    train = (level * rng.lognormal(0.0, 0.35, total)).astype(np.float32)
    steps = [s for s in range(1, total + 1) if s % tr.eval_every == 0 or s == total]
    mse = test[np.asarray(steps) - 1]
    cutoff = run.loss.type == "cutoff"
    skipped = (np.flatnonzero(rng.random(total) < 0.002 * cutoff) + 1).tolist()
    train[np.asarray(skipped, dtype=int) - 1] = 0.0
    adaptive = run.loss.type == "biv_adaptive"
    epsilon = list(enumerate(rng.lognormal(-1.0, 0.3, total).tolist(), 1)) if adaptive else []
    sums = torch.from_numpy(np.stack([mse, np.sqrt(mse) * 0.78], axis=1) * n_test)
    metrics = RunMetrics(list(torch.from_numpy(train)), list(sums), steps, skipped, epsilon)
    mean, std = LABELS[kind]
    z = torch.from_numpy(rng.standard_normal(n_test)).float()
    none = torch.empty(0)
    data = RunData(
        *[none] * 4, none.new_empty(n_test), z * std + mean, mean, std, *[None] * 2, {}, None
    )
    pred = z + float(np.sqrt(mse[-1])) * torch.from_numpy(rng.standard_normal(n_test)).float()
    record = {**plain_params(run), "run": {"pack": {"members": pack}}}
    out.mkdir(parents=True, exist_ok=True)
    done = Progress(total, None, total / STEPS_PER_S[kind])
    raw = (pred * std + mean).double()  # raw units, as training hands them over
    write_run_folder(run, record, out, raw, data, metrics, per_epoch, done)
    return total, len(steps), done.wall_time_s


def make_up(plan, jobs: list, depth: dict[int, int]) -> str:
    """Every made-up job's outputs and benchmark record, each job newer than what it needs."""
    from snakemake.benchmark import BenchmarkRecord, write_benchmark_records

    sizes = np.zeros(4)  # steps, test evaluations, wall s, bytes of the outputs
    now = time.time() - 60
    for i, d in depth.items():
        rule, job = jobs[i]
        run = write_pack(plan, job) if rule == TRAINING else (0, 0, 1.0)
        if rule == "draw_noise":  # read on the submit host by plot_noise
            write_draws(plan, job)
        for path in map(Path, job["output"] + job["benchmark"]):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()  # a pack's folder: its mtime
            files = path.rglob("*") if path.is_dir() else [path]
            sizes[3] += sum(f.stat().st_size for f in files if f.is_file())
        sizes[:3] += run
        if job["benchmark"]:  # the download job has none
            record = BenchmarkRecord(running_time=run[2], max_rss=500.0, cpu_time=run[2])
            record.data_collected = True  # written as Snakemake writes a benchmark: file
            write_benchmark_records([record], job["benchmark"][0], False)
        for path in job["output"] + job["benchmark"]:
            os.utime(path, (now + d, now + d))
    return f"{sizes[0]:,.0f} steps, {sizes[1]:,.0f} test evaluations, {sizes[3] / 1e6:.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/bench-submit-host"))
    parser.add_argument("--keep", action="store_true", help="keep the scratch copy")
    args = parser.parse_args()
    if not os.environ.get("BIV_DATA_DIR"):
        raise SystemExit("set BIV_DATA_DIR: config/paper.yaml reads UTKFace there")
    root = args.scratch.resolve()
    print(f"{datetime.datetime.now():%Y-%m-%d %H:%M}, {os.cpu_count()} CPUs, {platform.node()}")
    load, times = [os.getloadavg()], {}
    make_scratch(root)
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    sys.path.insert(0, str(root / "src"))
    try:
        import pandas as pd
        import yaml

        from biv.workflow.plan import load_plan

        os.chdir(root)
        config = yaml.safe_load(Path(CONFIG).read_text())
        times["snakemake -n, clean results/"], listing = snakemake(root, env, "-n")
        jobs = planned_jobs(listing)
        depth = made_up(jobs)
        if not depth:  # a listing this parser cannot read would plan all training below
            raise SystemExit(f"no {TRAINING} job found in snakemake -n's listing:\n{listing}")
        local = [job for i, job in enumerate(jobs) if i not in depth]
        start = time.perf_counter()
        sizes = make_up(load_plan(config), jobs, depth)
        print(f"made up {len(depth)} jobs in {time.perf_counter() - start:.0f} s; runs: {sizes}")
        times["snakemake -n, results in place"], listing = snakemake(root, env, "-n")
        if sorted(map(repr, planned_jobs(listing))) != sorted(map(repr, local)):
            raise SystemExit(f"with the made-up results Snakemake plans other jobs:\n{listing}")
        times["snakemake --cores 1"], _ = snakemake(root, env, "--cores", "1")
        load.append(os.getloadavg())
        bench = [(rule, job["benchmark"]) for rule, job in local if job["benchmark"]]
        seconds = [(rule, pd.read_csv(b[0], sep="\t")["s"][0]) for rule, b in bench]
    finally:
        os.chdir(REPO)
        if not args.keep:
            remove_scratch(root)
    report(len(jobs), [rule for rule, _ in local], seconds, times, load)


def report(planned: int, local: list[str], seconds: list, times: dict, load: list) -> None:
    print(f"\n{planned} jobs on a clean results/; on the submit host: {sorted(set(local))}")
    print(f"\n{'part (jobs: from their benchmark: files)':<45}{'jobs':>5}{'wall (s)':>10}")
    for rule in dict.fromkeys(rule for rule, _ in seconds):
        mine = [s for r, s in seconds if r == rule]
        print(f"{rule:<45}{len(mine):>5}{sum(mine):>10.1f}")
    run = times["snakemake --cores 1"]
    rest = run - sum(s for _, s in seconds)
    print(f"{'Snakemake itself, jobs without benchmark: file':<50}{rest:>10.1f}")
    print(f"{'snakemake --cores 1':<45}{len(local):>5}{run:>10.1f}")
    for name in ("snakemake -n, clean results/", "snakemake -n, results in place"):
        print(f"{name:<50}{times[name]:>10.1f}")
    total = run + times["snakemake -n, clean results/"]
    verdict = "met" if total <= GOAL_S else "NOT met"
    print(f"\ntotal (clean snakemake -n + snakemake --cores 1): {total:.1f} s (goal: {verdict})")
    print("load average: " + " -> ".join(str(tuple(round(x, 2) for x in avg)) for avg in load))


if __name__ == "__main__":
    main()
