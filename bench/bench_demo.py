"""Demo benchmark (not a test): wall time of ``snakemake --cores all`` on config/config.yaml from
a clean ``results/`` (goal: <= 60 s on a 2-core machine). With ``--configfile`` another config
(e.g. bench/bike-panel.yaml, the Bike panel: needs BIV_DATA_DIR); with ``--original-s`` the wall
time per run (runs.csv's rows) and how many times faster that is than the original code's time
for one run.

Runs in a scratch copy of the repository, never in the working tree: a detached
``git worktree`` of HEAD at ``--scratch``, overlaid with the working tree's current files
(modified and untracked, not ignored; files deleted there are deleted here), with
``PYTHONPATH=<scratch>/src`` so that the copy's ``biv`` package is the one that runs. The copy is
removed afterwards (``--keep`` keeps it). Prints the date, the machine, the load average before
and after, and the wall time of each repeat.

    python bench/bench_demo.py [--repeats 1] [--cores all] [--scratch /tmp/bench-wt] [--keep]
        [--configfile bench/bike-panel.yaml --original-s 336]
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from scratch import make_scratch, remove_scratch

from biv.train.devices import cpu_name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--cores", default="all")
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/bench-wt"))
    parser.add_argument("--keep", action="store_true", help="keep the scratch copy")
    parser.add_argument("--configfile", help="another config than config/config.yaml")
    parser.add_argument("--original-s", type=float, help="the original code's s for one run")
    args = parser.parse_args()
    snakemake = [sys.executable, "-m", "snakemake", "--cores", args.cores]
    if args.configfile:
        snakemake += ["--configfile", args.configfile]
    print(f"{datetime.date.today()}, {os.cpu_count()} CPUs ({cpu_name()}), {platform.node()}")
    print(f"load average before: {os.getloadavg()}")
    make_scratch(args.scratch)
    env = {**os.environ, "PYTHONPATH": str(args.scratch / "src")}
    try:
        for repeat in range(args.repeats):
            shutil.rmtree(args.scratch / "results", ignore_errors=True)
            shutil.rmtree(args.scratch / ".snakemake", ignore_errors=True)
            start = time.perf_counter()
            done = subprocess.run(snakemake, cwd=args.scratch, env=env, capture_output=True)
            seconds = time.perf_counter() - start
            if done.returncode:
                sys.stderr.write(done.stderr.decode()[-5000:])
                raise SystemExit(f"snakemake failed (exit {done.returncode})")
            print(f"repeat {repeat + 1}: snakemake --cores {args.cores}: {seconds:.1f} s wall")
            if args.original_s:
                with open(args.scratch / "results/tables/runs.csv") as f:
                    runs = sum(1 for _ in csv.DictReader(f))
                per_run = seconds / runs
                print(
                    f"  {runs} runs: {per_run:.2f} s per run, "
                    f"{args.original_s / per_run:.1f} x faster than the original's "
                    f"{args.original_s} s"
                )
    finally:
        print(f"load average after: {os.getloadavg()}")
        if not args.keep:
            remove_scratch(args.scratch)


if __name__ == "__main__":
    main()
