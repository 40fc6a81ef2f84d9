"""Statistics over seeds: Student-t means, the minimum of the seed-mean curve and its
percentile bootstrap, the bands of the learning curves, and the paired comparisons with a
baseline loss (numpy, and scipy for the Student-t quantile).

The paper reads "best" off the **seed-averaged curve**: ``min_of_mean_curve``. The mean over
seeds of each seed's own minimum (``mean_of_seed_mins``) is never above it, and the gap grows
with noisy curves. Both are computed, under names that say which is which.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from biv.config.figures import BANDS

if TYPE_CHECKING:
    import pandas as pd


N_BOOTSTRAP = 2000
BOOTSTRAP_SEED = 0
LEVEL = 0.95


def mean_ci(values, level: float = LEVEL, axis: int = 0):
    """Mean and the two-sided Student-t confidence interval of the mean along ``axis`` (NaN
    bounds for fewer than 2 values); floats for 1-D input, arrays otherwise."""
    x = np.asarray(values, dtype=float)
    n = x.shape[axis]
    if n == 0:
        nan = np.full(np.delete(x.shape, axis), np.nan)
        return nan[()], nan[()], nan[()]
    mean = x.mean(axis=axis)
    if n < 2:
        nan = np.full_like(mean, np.nan)
        return mean[()], nan[()], nan[()]
    from scipy import stats

    half = stats.t.ppf(0.5 + level / 2, n - 1) * x.std(axis=axis, ddof=1) / np.sqrt(n)
    return mean[()], (mean - half)[()], (mean + half)[()]


def band(values: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Low and high edge of a learning curve's band around the mean of ``values`` (seeds x
    steps), one of :data:`BANDS`: ``std`` mean ± 1 standard deviation, ``ci`` the
    95 % Student-t interval of the mean (both clipped at 0), ``range`` lowest to highest seed;
    None for ``none`` or a single seed."""
    if kind == "none" or len(values) < 2:
        return None
    if kind == "range":
        return values.min(axis=0), values.max(axis=0)
    if kind == "std":
        mean, half = values.mean(axis=0), values.std(axis=0, ddof=1)
        low, high = mean - half, mean + half
    elif kind == "ci":
        _, low, high = mean_ci(values, axis=0)
    else:
        raise ValueError(f"band: got {kind!r}; allowed: {', '.join(BANDS)}")
    return np.maximum(low, 0.0), np.maximum(high, 0.0)


def seed_matrix(curves: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The curves of one (experiment, loss) as (seeds, steps, values[seed, step]), on the
    evaluation steps that every seed has."""
    table = curves.pivot(index="seed", columns="step", values="value")
    table = table.dropna(axis=1).sort_index().sort_index(axis=1)
    return table.index.to_numpy(), table.columns.to_numpy(), table.to_numpy(dtype=float)


def curve_min(curve: np.ndarray) -> tuple[float, int]:
    """Smallest finite value of a curve and its index (the first on ties); (NaN, -1) if none."""
    finite = np.where(np.isfinite(curve), curve, np.inf)
    if not np.isfinite(finite).any():
        return float("nan"), -1
    index = int(np.argmin(finite))
    return float(curve[index]), index


def bootstrap_weights(n_seeds: int, n_boot: int = N_BOOTSTRAP, seed: int = BOOTSTRAP_SEED):
    """Resampling weights (n_boot, n_seeds): row b holds how often each seed is drawn in
    resample b, divided by n_seeds, so ``weights @ values`` gives the resampled mean curves.
    Seeded: the same resamples for every call with the same arguments."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    counts = np.zeros((n_boot, n_seeds))
    np.add.at(counts, (np.arange(n_boot)[:, None], draws), 1.0)
    return counts / n_seeds


def bootstrap_mins(values: np.ndarray, weights: np.ndarray, max_cells: int = 4_000_000):
    """Minimum over steps of the mean curve of each bootstrap resample (NaN where none is
    finite); computed in chunks of at most ``max_cells`` resample x step cells."""
    out = np.empty(len(weights))
    chunk = max(1, max_cells // max(values.shape[1], 1))
    for start in range(0, len(weights), chunk):
        means = weights[start : start + chunk] @ values
        means = np.where(np.isfinite(means), means, np.inf)
        mins = means.min(axis=1)
        out[start : start + chunk] = np.where(np.isfinite(mins), mins, np.nan)
    return out


def percentile_ci(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Two-sided percentile interval of the finite bootstrap samples (NaN if none)."""
    finite = samples[np.isfinite(samples)]
    if not finite.size:
        return float("nan"), float("nan")
    low, high = np.percentile(finite, [50 * (1 - level), 50 * (1 + level)])
    return float(low), float(high)


def curve_metrics(values: np.ndarray, steps: np.ndarray, boot: np.ndarray | None) -> dict:
    """The per-(experiment, loss) metrics of one seeds x steps matrix (see SUMMARY_COLUMNS);
    ``boot``: its :func:`bootstrap_mins` (None for one seed)."""
    mean_curve = values.mean(axis=0)
    best, index = curve_min(mean_curve)
    row = {
        "n_seeds": len(values),
        "min_of_mean_curve": best,
        "min_of_mean_curve_step": int(steps[index]) if index >= 0 else -1,
    }
    if boot is not None:
        row["min_of_mean_curve_ci_low"], row["min_of_mean_curve_ci_high"] = percentile_ci(boot)
    else:
        row["min_of_mean_curve_ci_low"] = row["min_of_mean_curve_ci_high"] = float("nan")
    finals = values[:, -1]
    row["final_of_mean_curve"], lo, hi = mean_ci(finals)
    row["final_of_mean_curve_step"] = int(steps[-1])
    row["final_of_mean_curve_ci_low"], row["final_of_mean_curve_ci_high"] = lo, hi
    mins = np.array([curve_min(v)[0] for v in values])
    row["mean_of_seed_mins"], lo, hi = mean_ci(mins)
    row["mean_of_seed_mins_ci_low"], row["mean_of_seed_mins_ci_high"] = lo, hi
    return row
