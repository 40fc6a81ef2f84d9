"""Time a dry run (`snakemake -n`) of config/paper.yaml and of a grid ten times larger.

    python bench/bench_dryrun.py

The larger grid gives every experiment and sweep ten times as many seeds. Prints the number of
jobs and the wall time of each dry run (start-up, config validation, DAG building).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def dry_run(config: Path) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", "--configfile", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    elapsed = time.perf_counter() - start
    total = re.search(r"^total\s+(\d+)", proc.stdout + proc.stderr, re.MULTILINE)
    return elapsed, int(total.group(1)) if total else -1


def ten_times_larger(config: dict) -> dict:
    for block in ("experiments", "sweeps"):
        for entry in config.get(block, {}).values():
            if "seeds" in entry:
                entry["seeds"] = [s * 10 + k for s in entry["seeds"] for k in range(10)]
    return config


def main() -> None:
    paper = ROOT / "config" / "paper.yaml"
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "paper-x10.yaml"
        config = ten_times_larger(yaml.safe_load(paper.read_text()))
        big.write_text(yaml.safe_dump(config, sort_keys=False))
        print(f"{'config':<16}{'jobs':>8}{'dry run (s)':>14}")
        for name, path in (("paper.yaml", paper), ("paper x10", big)):
            elapsed, jobs = dry_run(path)
            print(f"{name:<16}{jobs:>8}{elapsed:>14.1f}")


if __name__ == "__main__":
    main()
