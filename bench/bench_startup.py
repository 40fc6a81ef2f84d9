"""Start-up benchmark (not a test): a no-op training job against ``python -c "import torch"``.

The job is ``python -m biv.cli train params.json OUT`` on a tiny synthetic dataset (40 training
samples, one step, one evaluation, CPU), so nearly all of its time is start-up: imports, loading
the inputs, writing the run folder. Three legs run interleaved, ``--repeats`` times each:
``import torch``, ``import biv.train.loop`` (the job's imports) and the job. Printed: best and
median wall time of each, the job's ratio to ``import torch`` (goal: <= 1.3), and, from one
``python -X importtime`` run of the job, the cumulative import times of torch, torch._dynamo
(absent when nothing imports it) and biv.train.loop.

    python bench/bench_startup.py [--repeats 7] [--work /tmp/biv_bench_startup]
                                  [--pythonpath DIR]   # e.g. an older checkout's src/
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from biv.config.noise import resolve
from biv.data import prepare
from biv.data.prepared import train_labels
from biv.noise.files import write_draw_file

IMPORTS = ("torch", "torch._dynamo", "biv.train.loop")


def write_job(work: Path) -> list[str]:
    """Inputs and run parameters of a one-step training; returns the job's argument list."""
    prepare(
        "startup", {"kind": "synthetic", "n_train": 40, "n_test": 10, "seed": 0}, work / "data.npz"
    )
    setting = resolve({"mode": "boundaries", "components": [{"a": 0, "b": 1}]})
    write_draw_file(work / "noise.npz", train_labels(work / "data.npz"), setting.to_dict(), [0])
    params = {
        "experiment": "startup",
        "loss_name": "biv",
        "seed": 0,
        "dataset": {"name": "startup", "file": str(work / "data.npz")},
        "noise": {"name": "startup", "file": str(work / "noise.npz")},
        "loss": {"type": "biv", "epsilon": 0.5},
        "model": {"name": "mlp", "hidden": [100, 50, 20, 10], "batchnorm": False},
        "training": {"lr": 0.01, "batch_size": 40, "epochs": 1, "device": "cpu"},
    }
    (work / "params.json").write_text(json.dumps(params))
    return ["-m", "biv.cli", "train", str(work / "params.json"), str(work / "run")]


def wall(args: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def import_times(args: list[str], env: dict) -> dict[str, float]:
    """Cumulative seconds of the modules in IMPORTS, from ``-X importtime``."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    found = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        _, cumulative, name = line.split("|")
        if name.strip() in IMPORTS:  # listed once, where it is first imported
            found[name.strip()] = int(cumulative) / 1e6
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--work", type=Path, default=Path("/tmp/biv_bench_startup"))
    parser.add_argument("--pythonpath", help="prepended to PYTHONPATH for every leg")
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    job = write_job(args.work)
    env = dict(os.environ)
    if args.pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [args.pythonpath, env.get("PYTHONPATH")]))
    legs = {
        'python -c "import torch"': ["-c", "import torch"],
        'python -c "import biv.train.loop"': ["-c", "import biv.train.loop"],
        "biv train (1 step)": job,
    }
    times: dict[str, list[float]] = {name: [] for name in legs}
    for leg in legs.values():  # warm the file cache once
        wall(leg, env)
    for _ in range(args.repeats):
        for name, leg in legs.items():
            times[name].append(wall(leg, env))
    torch_s = statistics.median(times['python -c "import torch"'])
    print(f"| leg | best s | median s | median / import torch |  ({args.repeats} repeats)")
    print("| --- | --- | --- | --- |")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {min(values):.2f} | {median:.2f} | {median / torch_s:.2f} |")
    found = import_times(job, env)
    print(
        "\n-X importtime of the job (cumulative s): "
        + ", ".join(
            f"{name} {found[name]:.2f}" if name in found else f"{name} not imported"
            for name in IMPORTS
        )
    )


if __name__ == "__main__":
    main()
