"""Benchmark biv.data: prepare time and load time of each prepared file.

Times preparing all 23,708 UTKFace images at native size (200x200) and at 64x64 (goal: native
<= 60 s on 2 cores), the tabular and synthetic sets, and loading each prepared file: the
memory-mapped load, then a copy of every tensor (which reads every byte). Outputs go to a
temporary folder (default under /tmp) that is deleted afterwards.

    BIV_DATA_DIR=/work/shared/data python bench/bench_data.py [--workers 2] [--out-dir /tmp]
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import torch

from biv.data import load_prepared, prepare


def configs(data: Path) -> dict[str, dict]:
    n_images = sum(1 for p in (data / "utkface").iterdir() if p.name.endswith(".jpg"))
    utk = {"kind": "utkface", "path": str(data / "utkface"), "test_size": 4000}
    return {
        "synthetic": {"kind": "synthetic", "n_train": 4000, "n_test": 1000, "seed": 0},
        "bike": {
            "kind": "bike",
            "path": str(data / "bike-sharing"),
            "train_size": 7000,
            "test_size": 3379,
        },
        "wine": {
            "kind": "wine",
            "path": str(data / "wine-quality"),
            "train_size": 4000,
            "test_size": 2491,
        },
        "utkface_native": {**utk, "train_size": n_images - 4000},
        "utkface_64": {**utk, "train_size": n_images - 4000, "image_size": 64},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("BIV_DATA_DIR"))
    parser.add_argument("--out-dir", default=None, help="parent of the temporary output folder")
    parser.add_argument("--workers", type=int, default=None, help="decoding threads")
    args = parser.parse_args()
    if not args.data_dir:
        parser.error("set BIV_DATA_DIR or --data-dir")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    out = Path(tempfile.mkdtemp(prefix="bench_data.", dir=args.out_dir))
    rows = []
    try:
        for name, cfg in configs(Path(args.data_dir)).items():
            path = out / f"{name}.npz"
            start = time.perf_counter()
            meta = prepare(name, cfg, path, out / "downloads", workers=args.workers)
            prepare_s = time.perf_counter() - start
            start = time.perf_counter()
            prepared = load_prepared(path)
            load_s = time.perf_counter() - start
            start = time.perf_counter()
            for tensor in (v for v in prepared.values() if torch.is_tensor(v)):
                for chunk in tensor.reshape(-1).split(1 << 24):
                    chunk.clone()  # touch every byte of the memory-mapped file
            read_s = time.perf_counter() - start
            n = meta["n_train"] + meta["n_test"]
            rows.append((name, n, prepare_s, path.stat().st_size / 2**20, load_s, read_s))
            del prepared
            path.unlink()
    finally:
        shutil.rmtree(out)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"\n{'dataset':16} {'samples':>8} {'prepare s':>10} {'MiB':>8} {'load s':>8} {'read s':>8}"
    )
    for name, n, prep, mib, load, read in rows:
        print(f"{name:16} {n:8d} {prep:10.2f} {mib:8.1f} {load:8.4f} {read:8.2f}")
    print(f"peak RSS {peak:.2f} GiB; torch {torch.__version__}; {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
