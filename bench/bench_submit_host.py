"""Submit-host work of config/paper.yaml: every job that is not training, preparation or noise
(goal: <= 2 min on a 2-core machine).

    python bench/bench_submit_host.py [--scratch /tmp/bench-submit-host] [--data-dir DIR]
                                      [--no-snakemake] [--keep]

Training the paper's 550 runs is out of reach, so their run folders are made up with the
paper's real sizes. In a scratch ``git worktree`` (HEAD + the working tree's files, removed
afterwards; its ``src/`` is the ``biv`` that runs), for every run of the plan it writes
params.json (``biv.workflow.run_spec``), summary.json and metrics.csv in training's formats
(``biv.metrics.metrics_csv``), with one test evaluation every ``eval_every`` steps of the run's
own length (epochs x steps per epoch of its dataset's training set and batch size), seeded
decreasing-then-noisy curves, skipped steps for cutoffs and an epsilon line per step for the
adaptive BIV; empty placeholders for the prepared datasets, noise draws, predictions.csv and
run.json (no local job reads them; they keep Snakemake from wanting to train); and a Snakemake
benchmark .tsv for every earlier job.

Then it times, each once:

* ``snakemake -n`` of config/paper.yaml on a clean ``results/`` (the DAG build of every run)
  and with the made-up results in place (must plan only the local jobs, else it stops);
* every local job as Snakemake runs a ``script:`` job: its own Python process running the
  script behind Snakemake's preamble (pickled ``snakemake`` object), in the rules' order
  (aggregate, provenance, learning-curve figures, sweep figures, reproduction,
  collect_benchmarks) with the rules' inputs, outputs and params;
* each job's start-up alone: the same process with only the preamble and the script's imports;
* unless ``--no-snakemake``, the whole local part through Snakemake itself
  (``snakemake --cores 1 --keep-going`` with the made-up results in place: DAG build, the
  local jobs one after another, Snakemake's bookkeeping).

A job that fails is reported with its error and the benchmark goes on. Prints the date, the
machine, the load average, the inputs' sizes and the breakdown (work = job - start-up).
"""

from __future__ import annotations

import argparse
import ast
import datetime
import json
import os
import pickle
import platform
import re
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from scratch import REPO, make_scratch, remove_scratch

CONFIG = "config/paper.yaml"
LOCAL_RULES = {
    "aggregate",
    "provenance",
    "plot_learning_curves",
    "plot_sweep",
    "reproduction",
    "collect_benchmarks",
    "all",
}
GOAL_S = 120.0
#: Clean test MSE (normalized) a run settles at, by dataset kind, and how much worse each loss
#: ends up than that (made-up but in the ranges of the paper's figure).
FLOOR = {"utkface": 0.26, "bike": 0.075}
LOSS_FACTOR = {"mse": 1.5, "iv": 1.35, "biv": 1.1, "biv_adaptive": 1.12, "cutoff": 1.25}
#: Training throughput (steps/s) written into summary.json.
STEPS_PER_S = {"utkface": 35.0, "bike": 180.0}
#: Label standard deviations (raw units) for the raw test errors.
Y_STD = {"utkface": 19.9, "bike": 181.4}


# ---------------------------------------------------------------------------- made-up inputs


def run_dir(experiment: str, loss: str, seed: int) -> str:
    return f"results/runs/{experiment}/{loss}/seed{seed}"


def dataset_file(dataset: str) -> str:
    return f"results/data/{dataset}.pt"


def noise_file(dataset: str, noise: str, seed: int) -> str:
    return f"results/noise/{dataset}/{noise}/seed{seed}.pt"


def benchmark_tsv(path: Path, seconds: float, rng: np.random.Generator) -> None:
    """One record in Snakemake's benchmark TSV layout (header of BenchmarkRecord)."""
    from snakemake.benchmark import BenchmarkRecord

    rss = float(rng.uniform(300, 2500))
    cells = [
        f"{seconds:.2f}",
        str(datetime.timedelta(seconds=int(seconds))),
        f"{rss:.2f}",
        f"{rss * 3:.2f}",
        f"{rss * 0.9:.2f}",
        f"{rss * 0.95:.2f}",
        f"{rng.uniform(0, 50):.2f}",
        f"{rng.uniform(0, 50):.2f}",
        f"{rng.uniform(50, 100):.2f}",
        f"{seconds * 0.9:.2f}",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "\t".join(BenchmarkRecord.get_header(False))
    path.write_text(header + "\n" + "\t".join(cells) + "\n")


def run_seed(*parts: object) -> int:
    return zlib.crc32("/".join(map(str, parts)).encode())


def curves(rng: np.random.Generator, total: int, floor: float, noisy: bool):
    """Per-step training loss and clean test MSE: a fast decrease, then a noisy plateau with
    a slight rise (over-fitting) towards the end."""
    t = np.arange(1, total + 1) / total
    level = floor + (1.0 - floor) * np.exp(-t * 9.0) + 0.12 * floor * t**2
    spread = 0.07 if noisy else 0.025
    test = level * rng.lognormal(0.0, spread, total)
    train = level * (3.0 if noisy else 1.0) * rng.lognormal(0.0, 0.35, total)
    return train.astype(np.float32), test


def write_run(root: Path, plan, exp_name: str, loss: str, seed: int) -> tuple[int, int, int]:
    """params.json, summary.json, metrics.csv in training's formats (+ placeholders); returns
    (steps, evaluations, metrics.csv bytes)."""
    import torch

    from biv import atomic
    from biv import workflow as wf
    from biv.metrics import RunMetrics, best_index, eval_errors, metrics_csv

    exp = plan.experiments[exp_name]
    data = plan.datasets[exp.dataset]
    kind = data.config.kind
    spec = exp.losses[loss]
    tr = exp.training
    steps_per_epoch = tr.steps_per_epoch(data.n_train)
    total = steps_per_epoch * tr.epochs
    rng = np.random.default_rng(run_seed(exp_name, loss, seed))
    out = root / run_dir(exp_name, loss, seed)
    out.mkdir(parents=True, exist_ok=True)
    noise = None if exp.noise is None else noise_file(exp.dataset, exp.noise, seed)
    run = wf.run_spec(plan, exp_name, loss, seed, dataset_file(exp.dataset), noise)
    atomic.write_json(out / "params.json", run.to_dict())

    factor = LOSS_FACTOR[spec.type] if exp.noise is not None else 1.0
    train, test = curves(rng, total, FLOOR[kind] * factor, exp.noise is not None)
    steps = [s for s in range(1, total + 1) if s % tr.eval_every == 0 or s == total]
    n_test = int(data.config.test_size)
    mse = test[np.asarray(steps) - 1]
    mae = np.sqrt(mse) * rng.uniform(0.75, 0.8)
    skipped = []
    if spec.type == "cutoff":
        skipped = sorted(int(s) for s in np.flatnonzero(rng.random(total) < 0.002) + 1)
        train[np.asarray(skipped, dtype=int) - 1] = 0.0
    epsilon = []
    if spec.type == "biv_adaptive":
        epsilon = [(s, float(e)) for s, e in enumerate(rng.lognormal(-1.0, 0.3, total), 1)]
    metrics = RunMetrics(
        losses=list(torch.from_numpy(train).unbind()),
        test_sums=list(torch.from_numpy(np.stack([mse, mae], axis=1) * n_test).unbind()),
        eval_steps=steps,
        skipped=skipped,
        epsilon=epsilon,
    )
    errors = eval_errors(metrics, n_test, Y_STD[kind], tr.normalize)
    text = metrics_csv(metrics, errors, total, steps_per_epoch)
    atomic.write_text(out / "metrics.csv", text)
    best = best_index(errors.mse)
    wall = total / (STEPS_PER_S[kind] * rng.uniform(0.8, 1.2))
    summary = {
        "experiment": exp_name,
        "loss_name": loss,
        "seed": seed,
        "best_test_mse": errors.mse[best],
        "best_step": errors.steps[best],
        "final_test_mse": errors.mse[-1],
        "final_test_mse_raw": errors.mse_raw[-1],
        "final_test_mae_raw": errors.mae_raw[-1],
        "skipped_steps": len(skipped),
        "steps": total,
        "wall_time_s": wall,
        "steps_per_s": total / wall,
    }
    atomic.write_json(out / "summary.json", summary)
    (out / "predictions.csv").write_text("index,y_true,y_pred\n")  # placeholder
    (out / "run.json").write_text("{}\n")  # placeholder
    benchmark_tsv(root / f"results/benchmarks/train/{exp_name}/{loss}/seed{seed}.tsv", wall, rng)
    return total, len(steps), len(text)


def write_inputs(root: Path, plan) -> dict:
    """Everything the local jobs read, and the earlier jobs' outputs as placeholders written
    before the run folders (newer than the scripts, older than the runs: Snakemake then plans
    only the local jobs)."""
    rng = np.random.default_rng(0)
    used = sorted({exp.dataset for exp in plan.experiments.values()})
    placeholders = [root / dataset_file(d) for d in used]
    placeholders += [root / noise_file(*draw) for draw in plan.noise_draws()]
    for path in placeholders:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    for d in used:
        benchmark_tsv(root / f"results/benchmarks/prepare_dataset/{d}.tsv", 30.0, rng)
    for d, n, s in plan.noise_draws():
        benchmark_tsv(root / f"results/benchmarks/generate_noise/{d}/{n}/seed{s}.tsv", 3.0, rng)
    steps = evals = size = 0
    for run in plan.runs:
        s, e, b = write_run(root, plan, run.experiment, run.loss, run.seed)
        steps, evals, size = steps + s, evals + e, size + b
    return {"runs": len(plan.runs), "steps": steps, "evaluations": evals, "metrics_bytes": size}


# ---------------------------------------------------------------------------- the local jobs


@dataclass
class Job:
    rule: str
    name: str
    input: dict
    output: dict
    params: dict
    wildcards: dict = field(default_factory=dict)

    @property
    def log(self) -> str:
        return f"results/logs/{self.rule}{'/' + self.name if self.wildcards else ''}.log"

    @property
    def benchmark(self) -> str | None:
        if self.rule == "collect_benchmarks":
            return None
        return f"results/benchmarks/{self.rule}/{self.name}.tsv"


def run_files(runs, name: str) -> list[str]:
    return [f"{run_dir(r.experiment, r.loss, r.seed)}/{name}" for r in runs]


def local_jobs(plan, config: dict) -> list[Job]:
    """The local jobs of rules/tables.smk, figures.smk and report.smk, in a valid order,
    with the inputs, outputs and params those rules give (rules/common.smk)."""
    from biv import figure_spec
    from biv import workflow as wf

    tables = {"runs": "results/tables/runs.csv", "summary": "results/tables/summary.csv"}
    jobs = [
        Job(
            "aggregate",
            "all",
            {
                "summaries": run_files(plan.runs, "summary.json"),
                "params": run_files(plan.runs, "params.json"),
                "metrics": run_files(plan.runs, "metrics.csv"),
            },
            {**tables, "summary_html": "results/tables/summary.html"},
            {
                "experiments": wf.experiment_table(plan),
                "sweeps": {name: sweep.as_dict() for name, sweep in plan.sweeps.items()},
            },
        ),
        Job("provenance", "all", {"0": tables["runs"]}, {"0": "results/provenance.json"}, {}),
    ]
    jobs[-1].params["config"] = config
    for name, fig in plan.figures.items():
        shown = wf.figure_experiments(fig)
        jobs.append(
            Job(
                "plot_learning_curves",
                name,
                {
                    "runs": tables["runs"],
                    "metrics": run_files(
                        [r for r in plan.runs if r.experiment in shown], "metrics.csv"
                    ),
                },
                {"png": f"results/figures/{name}.png", "pdf": f"results/figures/{name}.pdf"},
                {"figure": fig, "caption": figure_spec.learning_curves_caption(fig, name)},
                {"figure": name},
            )
        )
    for name, sweep in plan.sweeps.items():
        baseline = plan.experiments[sweep.experiment].baseline
        jobs.append(
            Job(
                "plot_sweep",
                name,
                {"summary": tables["summary"]},
                {
                    "png": f"results/figures/sweeps/{name}.png",
                    "pdf": f"results/figures/sweeps/{name}.pdf",
                },
                {
                    "sweep": sweep.as_dict(),
                    "caption": figure_spec.sweep_caption(sweep.as_dict(), baseline),
                },
                {"sweep": name},
            )
        )
    if "reproduction" in config:
        block = config["reproduction"]
        jobs.append(
            Job(
                "reproduction",
                "all",
                {
                    "summary": tables["summary"],
                    "reference": block["reference"],
                    "figure": f"results/figures/{block['figure']}.png",
                },
                {"md": "results/reproduction.md", "html": "results/reproduction.html"},
                {"block": block},
            )
        )
    bench = [
        f"results/benchmarks/prepare_dataset/{d}.tsv"
        for d in sorted({exp.dataset for exp in plan.experiments.values()})
    ]
    bench += [
        f"results/benchmarks/generate_noise/{d}/{n}/seed{s}.tsv" for d, n, s in plan.noise_draws()
    ]
    bench += [
        f"results/benchmarks/train/{r.experiment}/{r.loss}/seed{r.seed}.tsv" for r in plan.runs
    ]
    bench += [j.benchmark for j in jobs]
    jobs.append(
        Job("collect_benchmarks", "all", {"0": bench}, {"0": "results/tables/benchmarks.csv"}, {})
    )
    return jobs


def named(cls, items: dict):
    """A Snakemake Namedlist with list values flattened, as Snakemake builds input/output."""
    result = cls()
    for key, value in items.items():
        start = len(result)
        if isinstance(value, list):
            result.extend(value)
            end = len(result)
        else:
            result.append(value)
            end = None
        if not key.isdigit():
            result._set_name(key, start, end)
    return result


def job_script(job: Job, root: Path, config: dict, startup_only: bool) -> Path:
    """The file Snakemake runs for a ``script:`` job: its preamble (the pickled ``snakemake``
    object, as snakemake.script.PythonScript.generate_preamble writes it) and the script, or
    for ``startup_only`` the script's import statements only."""
    from snakemake.iocontainers import (
        InputFiles,
        Log,
        OutputFiles,
        Params,
        ResourceList,
        Snakemake,
        Wildcards,
    )
    from snakemake.script import get_snakemake_searchpaths

    script = root / "scripts" / f"{job.rule}.py"
    source = script.read_text()
    if startup_only:
        tree = ast.parse(source)
        source = "\n".join(
            ast.get_source_segment(source, node)
            for node in tree.body
            if isinstance(node, ast.Import | ast.ImportFrom)
        )
    obj = Snakemake(
        named(InputFiles, job.input),
        named(OutputFiles, job.output),
        named(Params, job.params),
        named(Wildcards, job.wildcards),
        1,
        named(ResourceList, {"_cores": 1, "_nodes": 1, "tmpdir": "/tmp"}),
        named(Log, {"0": job.log}),
        config,
        job.rule,
        None,
        str(script.parent),
    )
    preamble = (
        f"import sys; sys.path.extend({get_snakemake_searchpaths()!r}); import pickle; "
        f"snakemake = pickle.loads({pickle.dumps(obj, protocol=4)!r}); "
        "from snakemake.logging import logger; from snakemake.iocontainers import Snakemake; "
        f"__real_file__ = __file__; __file__ = {str(script)!r};\n"
    )
    kind = "startup" if startup_only else "job"
    path = root / ".snakemake" / "scripts" / f"{kind}.{job.rule}.{job.name}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(preamble + source)
    return path


def timed(cmd: list[str], root: Path, env: dict, check: bool = True) -> tuple[float, str, int]:
    """Wall seconds, output and exit status of ``cmd``; a failure stops the benchmark if
    ``check``."""
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode and check:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-5000:])
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed (exit {done.returncode})")
    return seconds, done.stdout + done.stderr, done.returncode


def dry_run(root: Path, env: dict) -> tuple[float, dict[str, int]]:
    cmd = [sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", "--configfile", CONFIG]
    seconds, text, _ = timed(cmd, root, env)
    counts = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z_][\w-]*)\s+(\d+)$", line.strip())
        if m:
            counts[m.group(1)] = int(m.group(2))
    return seconds, counts


def local_outputs(jobs: list[Job]) -> list[str]:
    files = []
    for job in jobs:
        files += [v for v in job.output.values()] + [job.log]
        files += [job.benchmark] if job.benchmark else []
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/bench-submit-host"))
    parser.add_argument("--data-dir", default=os.environ.get("BIV_DATA_DIR"))
    parser.add_argument("--no-snakemake", action="store_true", help="skip the Snakemake run")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copy")
    args = parser.parse_args()
    if not args.data_dir:
        raise SystemExit("set BIV_DATA_DIR (or --data-dir): config/paper.yaml reads UTKFace there")
    root = args.scratch.resolve()
    print(f"{datetime.datetime.now():%Y-%m-%d %H:%M}, {os.cpu_count()} CPUs, {platform.node()}")
    load = [os.getloadavg()]
    print(f"load average before: {load[0]}")
    make_scratch(root)
    env = {**os.environ, "PYTHONPATH": str(root / "src"), "BIV_DATA_DIR": args.data_dir}
    os.environ["BIV_DATA_DIR"] = args.data_dir
    sys.path.insert(0, str(root / "src"))
    times: dict[str, float] = {}
    try:
        from snakemake.utils import validate

        from biv import workflow as wf

        os.chdir(root)
        config = yaml.safe_load(Path(CONFIG).read_text())
        validate(config, str(root / "config" / "schema.yaml"))
        plan = wf.build_plan(config)

        times["dry run, clean results/"], counts = dry_run(root, env)
        print(f"snakemake -n, clean: {sum(counts.values()) - counts.get('total', 0)} jobs")

        start = time.perf_counter()
        sizes = write_inputs(root, plan)
        made = time.perf_counter() - start
        print(
            f"made up {sizes['runs']} runs in {made:.0f} s: {sizes['steps']:,} steps, "
            f"{sizes['evaluations']:,} test evaluations, metrics.csv "
            f"{sizes['metrics_bytes'] / 1e6:.0f} MB"
        )

        seconds, counts = dry_run(root, env)
        counts.pop("total", None)
        if not counts or set(counts) - LOCAL_RULES:
            raise SystemExit(
                f"with the made-up results Snakemake plans more than the local jobs: {counts}"
            )
        times["dry run, results in place"] = seconds
        print(f"snakemake -n, results in place: {counts}")

        jobs = local_jobs(plan, config)
        rows = []
        rng = np.random.default_rng(1)
        for job in jobs:
            for file in [*job.output.values(), job.log]:  # as Snakemake does before a job
                (root / file).parent.mkdir(parents=True, exist_ok=True)
            startup, _, _ = timed(
                [sys.executable, str(job_script(job, root, config, True))], root, env
            )
            script = job_script(job, root, config, False)
            full, text, status = timed([sys.executable, str(script)], root, env, check=False)
            error = text.strip().splitlines()[-1:] if status else []
            rows.append((job, startup, full, " | ".join(error)))
            if job.benchmark:
                benchmark_tsv(root / job.benchmark, full, rng)
            failed = f"  FAILED: {error[0]}" if error else ""
            print(
                f"  {job.rule:<22}{job.name:<20}{full:>8.1f} s (start-up {startup:.1f} s){failed}"
            )
        load.append(os.getloadavg())

        if not args.no_snakemake:
            for file in local_outputs(jobs):
                (root / file).unlink(missing_ok=True)
            cmd = [sys.executable, "-m", "snakemake", "--cores", "1", "--keep-going"]
            cmd += ["--configfile", CONFIG]
            times["snakemake --cores 1"], text, status = timed(cmd, root, env, check=False)
            done = re.findall(r"\d+ of \d+ steps \(\d+%\) done", text)
            print(f"snakemake --cores 1: exit {status}, {done[-1] if done else text[-300:]}")
            for line in sorted(set(re.findall(r"^Error in rule \S+", text, re.MULTILINE))):
                print(f"  {line}")
            load.append(os.getloadavg())
    finally:
        os.chdir(REPO)
        if not args.keep:
            remove_scratch(root)
    report(rows, times, load)


def report(rows: list, times: dict[str, float], load: list) -> None:
    label = {
        "aggregate": "aggregate",
        "provenance": "provenance",
        "plot_learning_curves": "learning-curve figures",
        "plot_sweep": "sweep figures",
        "reproduction": "reproduction",
        "collect_benchmarks": "collect_benchmarks",
    }
    groups: dict[str, list] = {}
    for job, startup, full, _ in rows:
        groups.setdefault(label[job.rule], []).append((startup, full))
    print(f"\n{'part':<34}{'jobs':>5}{'work':>9}{'start-up':>10}{'wall (s)':>10}")
    for name, items in groups.items():
        startup, full = (sum(x) for x in zip(*items, strict=True))
        print(f"{name:<34}{len(items):>5}{full - startup:>9.1f}{startup:>10.1f}{full:>10.1f}")
    for name in ("dry run, clean results/", "dry run, results in place"):
        print(f"{'snakemake -n, ' + name.removeprefix('dry run, '):<34}{times[name]:>34.1f}")
    startups = sum(row[1] for row in rows)
    jobs = sum(row[2] for row in rows)
    dry = max(times["dry run, clean results/"], times["dry run, results in place"])
    total = dry + jobs
    verdict = "met" if total <= GOAL_S else "NOT met"
    print(
        f"\nlocal jobs: {len(rows)}, work {jobs - startups:.1f} s + start-ups {startups:.1f} s"
        f" = {jobs:.1f} s; with the slower dry run: {total:.1f} s (goal <= {GOAL_S:.0f} s:"
        f" {verdict})"
    )
    if "snakemake --cores 1" in times:
        print(f"snakemake --cores 1 (the local jobs): {times['snakemake --cores 1']:.1f} s")
    failed = [row for row in rows if row[3]]
    for job, _, full, error in failed:
        print(f"FAILED after {full:.1f} s: {job.rule} {job.name}: {error}")
    if failed:
        # a failed job stopped early: count it at the median of its rule's other jobs
        extra = 0.0
        for job, _, full, _ in failed:
            done = [row[2] for row in rows if row[0].rule == job.rule and not row[3]]
            extra += max(float(np.median(done)) - full, 0.0) if done else 0.0
        print(f"with the failed jobs at their rule's median: {total + extra:.1f} s")
    shown = [str(tuple(round(x, 2) for x in avg)) for avg in load]
    print(f"load average: {' -> '.join(shown)}")
    print(json.dumps({"times": times, "startups": startups, "jobs": jobs, "total": total}))


if __name__ == "__main__":
    main()
