"""Benchmark of packs (biv.train.loop.train_pack) on Bike (not a test).

The paper's Bike MLP (19-100-50-20-10-1) on 14,000 training rows, batch 256 (55 steps per
epoch), the paper's training block (no shuffling, test MSE after every step with the original's
protocol: test batches of 256), members cycling through L2, IV, BIV and cutoff (epsilon 0.1,
C = 20000) over seeds 1, 2, ...; each seed its own gamma noise draw (mean 20000, shape 1).
The data: ``bench_train.prepare_bike`` (real Bike with BIV_DATA_DIR, else random data of its
shape).

1. ``--sizes``: per-run cost of packs of each size (a few epochs), to choose the default, split
   into the training step and the test evaluation (``biv.train.step.Steps``: wall time inside
   each), with GFLOP/s per core counting 2 FLOP per multiply-add of the MLP's products (a step's
   forward and backward pass over a batch of 256: 3 x 256 x 8,110; an evaluation: 3,379 x 8,110).
2. ``--full``: one pack of 5 seeds x 4 losses for 100 epochs (5,500 steps, 5,500 evaluations
   per run): wall time, and per run amortized against ``--original-s`` (the original code's
   time for one such run on this machine).

    BIV_DATA_DIR=/path/to/data python bench/bench_pack.py [--threads 1] [--sizes 1,2,5,10,20]
        [--epochs 3] [--full] [--original-s 336] [--work /tmp/biv_bench_pack]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
from bench_train import BIKE_MLP, bike_training, prepare_bike

import biv.train.step
from biv.config.noise import resolve
from biv.data.prepared import train_labels
from biv.noise.files import write_draw_file
from biv.train.loop import train_pack

LOSSES = [
    ("l2", {"type": "mse"}),
    ("iv", {"type": "iv", "epsilon": 0.1}),
    ("biv", {"type": "biv", "epsilon": 0.1}),
    ("cutoff", {"type": "cutoff", "threshold": 20000}),
]
NOISE = {"mode": "meanvar", "distribution": "gamma", "components": [{"mean": 20000, "var": 4e8}]}


def members(work: Path, data: Path, size: int, epochs: int) -> list[dict]:
    noise = work / "noise.npz"
    seeds = range(1, 1 + (size + len(LOSSES) - 1) // len(LOSSES))
    write_draw_file(noise, train_labels(data), resolve(NOISE).to_dict(), seeds)
    runs = []
    for i in range(size):
        seed = 1 + i // len(LOSSES)
        name, loss = LOSSES[i % len(LOSSES)]
        runs.append(
            {
                "experiment": "bench-bike",
                "loss_name": name,
                "seed": seed,
                "dataset": {"name": "bike", "file": str(data)},
                "noise": {"name": "bike-gamma", "file": str(noise)},
                "loss": loss,
                "model": BIKE_MLP,
                "training": bike_training(
                    epochs,
                    shuffle=False,
                    eval_protocol="original",
                    eval_batch_size=256,
                    device="cpu",
                ),
            }
        )
    return runs


#: Multiply-adds of the Bike MLP (19-100-50-20-10-1) per row; its step's and evaluation's FLOP.
MLP_MACS = 19 * 100 + 100 * 50 + 50 * 20 + 20 * 10 + 10 * 1
STEP_FLOP, EVAL_FLOP = 2 * 3 * 256 * MLP_MACS, 2 * 3379 * MLP_MACS


def timed(work: Path, runs: list[dict], label: str) -> dict:
    out = work / label
    inside = {"train_step": 0.0, "evaluate": 0.0}
    originals = {name: getattr(biv.train.step.Steps, name) for name in inside}

    def timing(name):
        def timed_call(self, *args, **kwargs):
            start = time.perf_counter()
            try:
                return originals[name](self, *args, **kwargs)
            finally:
                inside[name] += time.perf_counter() - start

        return timed_call

    for name in inside:
        setattr(biv.train.step.Steps, name, timing(name))
    try:
        start = time.perf_counter()
        summaries = train_pack(runs, [out / f"m{i}" for i in range(len(runs))], out)
        wall = time.perf_counter() - start
    finally:
        for name, original in originals.items():
            setattr(biv.train.step.Steps, name, original)
    steps, size, cores = summaries[0]["steps"], len(runs), torch.get_num_threads()
    return {
        "pack_size": size,
        "steps": steps,
        "wall_s": round(wall, 2),
        "per_run_s": round(wall / size, 3),
        "per_run_step_ms": round(1000 * wall / size / steps, 3),
        "step_gflops_per_core": round(
            STEP_FLOP * size * steps / inside["train_step"] / cores / 1e9, 1
        ),
        "eval_gflops_per_core": round(
            EVAL_FLOP * size * steps / inside["evaluate"] / cores / 1e9, 1
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sizes", default="1,2,5,10,20")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--original-s", type=float, default=336.0)
    parser.add_argument("--work", type=Path, default=Path("/tmp/biv_bench_pack"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    data, source = prepare_bike(args.work)
    report = {"data": source, "threads": args.threads, "load_before": os.getloadavg()[0]}
    if args.sizes:
        report["sizes"] = [
            timed(args.work, members(args.work, data, size, args.epochs), f"size{size}")
            for size in (int(s) for s in args.sizes.split(","))
        ]
    if args.full:
        full = timed(args.work, members(args.work, data, 20, 100), "full")
        full["original_per_run_s"] = args.original_s
        full["fraction_of_original"] = round(full["per_run_s"] / args.original_s, 4)
        report["full"] = full
    report["load_after"] = os.getloadavg()[0]
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
