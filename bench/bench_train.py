"""Benchmark of biv.train.loop (not a test).

1. Bike (14000 train x 19 features, 3379 test; batch 256, 100 epochs = 5,500 steps, test MSE after
   every step): wall time of ``biv.train.loop.train`` against a bare PyTorch loop doing the same
   steps
   (same model, initialisation, permutations, BIV loss and per-step evaluation) on the same
   in-memory tensors. The legs run interleaved, ``--repeats`` times each; medians are reported.
   Uses the real Bike data when biv.data and BIV_DATA_DIR are available, else random data of
   the same shape.
2. The age CNN on random uint8 images of 64x64 and 200x200: training steps/s (a few steps).

    python bench/bench_train.py [--repeats 3] [--epochs 100] [--device cpu] [--threads N]
                                [--work /tmp/biv_bench] [--skip-bike] [--skip-cnn]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from pathlib import Path

import torch
from gpu_check_inputs import images

from biv.config import RunSpec
from biv.config.noise import resolve
from biv.data import prepare
from biv.data.prepared import train_labels
from biv.legacy.original import MODEL_SPECS
from biv.noise.files import write_draw_file
from biv.train.loop import train
from biv.train.models import build_model
from biv.train.run_data import load_run_data

EPSILON = 0.5
#: The paper's Bike MLP (19-100-50-20-10-1), as biv legacy maps the original's vanilla_ann.
BIKE_MLP = MODEL_SPECS[("vanilla_ann", "bike")]


def prepare_bike(work: Path) -> tuple[Path, str]:
    """The prepared Bike file (real data if possible, else random data of the same shape)."""
    path = work / "bike.npz"
    data_dir = os.environ.get("BIV_DATA_DIR")
    if data_dir:
        cfg = {
            "kind": "bike",
            "path": str(Path(data_dir) / "bike-sharing"),
            "train_size": 14000,
            "test_size": 3379,
        }
        prepare("bike", cfg, path)
        return path, "real UCI Bike Sharing (biv.data)"
    synthetic = {"kind": "synthetic", "n_train": 14000, "n_test": 3379, "n_features": 19, "seed": 0}
    prepare("bike-shaped", synthetic, path)
    return path, "synthetic data of Bike's shape (BIV_DATA_DIR not set)"


def bike_training(epochs: int, **settings) -> dict:
    """The paper's Bike training block (Adam, lr 0.001, batch 256, test MSE after every step)
    for ``epochs``, with ``settings`` added."""
    return {"lr": 0.001, "batch_size": 256, "epochs": epochs, "eval_every": 1, **settings}


def bike_params(work: Path, data: Path, device: str, epochs: int) -> dict:
    gamma = {"shape": 0.5, "rate": 0.5 / 20000}
    setting = {"mode": "alphabeta", "distribution": "gamma", "components": [gamma]}
    noise = work / "noise.npz"
    write_draw_file(noise, train_labels(data), resolve(setting).to_dict(), [1])
    return {
        "experiment": "bench_bike",
        "loss_name": "biv",
        "seed": 1,
        "dataset": {"name": "bike", "file": str(data)},
        "noise": {"name": "gamma_mu20000", "file": str(noise)},
        "loss": {"type": "biv", "epsilon": EPSILON},
        "model": BIKE_MLP,
        "training": bike_training(epochs, device=device, eval_batch_size=1024),
    }


def bare_loop(params: dict, device: torch.device) -> tuple[float, float, float]:
    """The same training written as a plain loop; returns (wall s, CPU s, final test MSE)."""
    tr = params["training"]
    run = RunSpec.from_dict(params)
    data = load_run_data([run], device)  # the same in-memory tensors; not timed
    x, y, var = data.x_train, data.y_train[0], data.var_train[0]
    chunks = data.x_test.split(tr["eval_batch_size"])
    n, bs = len(y), tr["batch_size"]
    start, cpu = time.perf_counter(), time.process_time()
    torch.manual_seed(params["seed"])
    model = build_model(run.model, tuple(x.shape[1:])).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=tr["lr"])
    gen = torch.Generator().manual_seed(params["seed"])
    losses, sums = [], []
    for _ in range(tr["epochs"]):
        perm = torch.randperm(n, generator=gen).to(device)
        for lo in range(0, n, bs):
            idx = perm[lo : lo + bs]
            xb, yb, vb = x[idx], y[idx], var[idx]
            w = 1.0 / (vb + EPSILON)
            loss = (w * (model(xb).squeeze(1) - yb).square()).sum() / w.sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.detach())
            model.eval()
            with torch.no_grad():
                err = torch.cat([model(c) for c in chunks]).squeeze(1) - data.y_test
                sums.append(torch.stack((err.square().sum(), err.abs().sum())))
            model.train()
    final = float(torch.stack(sums)[-1, 0]) / len(data.y_test)
    torch.stack(losses).cpu()
    return time.perf_counter() - start, time.process_time() - cpu, final


def biv_leg(params: dict, out: Path) -> tuple[float, float, float, float]:
    """(wall s of the whole train() call, its CPU s, its loop wall s, final test MSE)."""
    shutil.rmtree(out, ignore_errors=True)  # no checkpoint of an interrupted benchmark
    start, cpu = time.perf_counter(), time.process_time()
    summary = train(params, out)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return wall, cpu, summary["wall_time_s"], summary["final_test_mse"]


def cnn_steps_per_s(work: Path, size: int, batch: int, steps: int, device: str) -> float:
    path = images(work, batch * steps, 8, size)  # random uint8 images (the GPU check's)
    params = {
        "experiment": "bench_cnn",
        "loss_name": "mse",
        "seed": 0,
        "dataset": {"name": "images", "file": str(path)},
        "noise": None,
        "loss": {"type": "mse"},
        "model": {"name": "cnn"},
        "training": {
            "lr": 0.001,
            "batch_size": batch,
            "epochs": 1,
            "eval_every": steps,
            "device": device,
            "checkpoint_every": 0,
        },
    }
    # the steps/s of the summary include one evaluation of the 8 test images at the end
    return train(params, work / f"cnn{size}")["steps_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=100, help="Bike epochs (55 steps each)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--work", default="/tmp/biv_bench")
    parser.add_argument("--cnn-batch", type=int, default=32)
    parser.add_argument("--cnn-steps", type=int, default=4)
    parser.add_argument("--skip-bike", action="store_true")
    parser.add_argument("--skip-cnn", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    report = {"device": args.device, "torch_threads": torch.get_num_threads()}
    if not args.skip_bike:
        data, source = prepare_bike(work)
        params = RunSpec.from_dict(bike_params(work, data, args.device, args.epochs)).to_dict()
        legs = {"bare_wall_s": [], "bare_cpu_s": [], "biv_wall_s": [], "biv_cpu_s": []}
        for i in range(args.repeats):  # interleaved legs
            wall, cpu, bare_mse = bare_loop(params, device)
            legs["bare_wall_s"].append(wall)
            legs["bare_cpu_s"].append(cpu)
            total, total_cpu, loop_s, biv_mse = biv_leg(params, work / f"run{i}")
            legs["biv_wall_s"].append(total)
            legs["biv_cpu_s"].append(total_cpu)
            print(
                f"repeat {i + 1}: bare {wall:.2f} s (CPU {cpu:.2f} s), "
                f"biv.train.loop {total:.2f} s "
                f"(CPU {total_cpu:.2f} s, loop {loop_s:.2f} s); "
                f"final test MSE bare {bare_mse:.6g}, biv.train.loop {biv_mse:.6g}",
                flush=True,
            )
        median = {key: statistics.median(values) for key, values in legs.items()}
        report["bike"] = {
            "data": source,
            "steps": json.loads((work / "run0/summary.json").read_text())["steps"],
            "median": median,
            "ratio_wall": median["biv_wall_s"] / median["bare_wall_s"],
            "ratio_cpu": median["biv_cpu_s"] / median["bare_cpu_s"],
            "all": legs,
        }
    if not args.skip_cnn:
        report["cnn_steps_per_s"] = {
            f"{size}x{size}, batch {args.cnn_batch}": cnn_steps_per_s(
                work, size, args.cnn_batch, args.cnn_steps, args.device
            )
            for size in (64, 200)
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
