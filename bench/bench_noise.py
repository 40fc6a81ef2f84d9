"""Time noise generation (biv.noise.draws.draw) for 10^6 labels.

Usage: python bench/bench_noise.py [--n N] [--repeats R]
Goal: every setting < 1 s for 10^6 labels on a 2-core CPU. Prints the best and median of R runs.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from biv.config.noise import resolve
from biv.noise.draws import draw

SETTINGS = {
    "uniform U(1,3)": {"mode": "boundaries", "components": [{"a": 1, "b": 3}]},
    "uniform meanvar + vd=1": {
        "mode": "meanvar",
        "distribution": "uniform",
        "variance_disturbance": 1.0,
        "components": [{"mean": 2000, "var_scale": 1}],
    },
    "gamma shape 0.5": {"mode": "alphabeta", "components": [{"shape": 0.5, "rate": 1e-4}]},
    "gamma shape 4 + vd=1": {
        "mode": "meanvar",
        "distribution": "gamma",
        "variance_disturbance": 1.0,
        "components": [{"mean": 20000, "var": 1e8}],
    },
    "mixture uniform + point mass": {
        "mode": "meanvar_avg",
        "distribution": "uniform",
        "p": 0.5,
        "average_mean": 2000,
        "components": [{"mean": 0.5, "var": 0.083}, {"var": 0}],
    },
    "mixture gamma + uniform": {
        "mode": "meanvar_avg",
        "p": 0.8,
        "average_mean": 100,
        "components": [
            {"distribution": "gamma", "mean": 10, "var": 50},
            {"distribution": "uniform", "var_scale": 1},
        ],
    },
}


def timed(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10**6, help="labels per draw")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    y = np.random.default_rng(0).standard_normal(args.n) * 100 + 500
    print(f"noise generation (numpy), N = {args.n}")
    print(f"{'setting':32} {'best s':>8} {'median s':>9} {'Mlabels/s':>10}")
    for name, setting in SETTINGS.items():
        spec = resolve(setting)
        times = timed(lambda spec=spec: draw(y, spec, seed=1), args.repeats)
        best = min(times)
        print(f"{name:32} {best:8.3f} {statistics.median(times):9.3f} {args.n / best / 1e6:10.2f}")


if __name__ == "__main__":
    main()
