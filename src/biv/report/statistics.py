"""Statistics over seeds: Student-t means, the minimum of the seed-mean curve with its interval
(:func:`min_interval`), the bands of the learning curves, and the paired
comparisons with a baseline loss (numpy, and scipy for the Student-t quantile). How often each
interval covers is measured by :mod:`biv.report.coverage`.

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


def ratio_ci(values: np.ndarray, base: np.ndarray, level: float = LEVEL):
    """mean(values) / mean(base) of paired per-seed values and its Student-t interval by
    linearization: the t interval of the mean of d = values - ratio * base, divided by
    mean(base) (the delta method of a ratio of paired means); NaN bounds for fewer than 2."""
    ratio = values.mean() / base.mean()
    _, low, high = mean_ci(values - ratio * base, level)
    return ratio, ratio + low / base.mean(), ratio + high / base.mean()


def cross_fitted(values: np.ndarray) -> np.ndarray:
    """Each seed's value at the step where the mean curve of the *other* seeds is lowest (NaN
    where those have no finite value): a best step not chosen on the seed's own curve."""
    out = np.full(len(values), np.nan)
    total = values.sum(axis=0)
    for seed, curve in enumerate(values):
        _, index = curve_min((total - curve) / (len(values) - 1))
        if index >= 0:
            out[seed] = curve[index]
    return out


def min_interval(values: np.ndarray, index: int, level: float = LEVEL) -> tuple[float, float]:
    """Interval of the lowest point of the population's mean curve from seeds x steps
    ``values`` whose mean curve is lowest at ``index``: the union of the Student-t intervals of
    the seeds' values at that step and of their cross-fitted values (:func:`cross_fitted`).
    The first alone is too low (the step is picked where these seeds happen to be low); the
    second is free of that and lies above (its step is not the population's best); their union
    covers 95-97 % at 3 and 5 seeds on Bike (docs/reproducing.md)."""
    if len(values) < 2 or index < 0:
        return float("nan"), float("nan")
    _, low, high = mean_ci(values[:, index], level)
    _, cross_low, cross_high = mean_ci(cross_fitted(values), level)
    return float(np.minimum(low, cross_low)), float(np.maximum(high, cross_high))


def curve_metrics(values: np.ndarray, steps: np.ndarray) -> dict:
    """The per-(experiment, loss) metrics of one seeds x steps matrix (see SUMMARY_COLUMNS)."""
    best, index = curve_min(values.mean(axis=0))
    row = {
        "n_seeds": len(values),
        "min_of_mean_curve": best,
        "min_of_mean_curve_step": int(steps[index]) if index >= 0 else -1,
    }
    row["min_of_mean_curve_ci_low"], row["min_of_mean_curve_ci_high"] = min_interval(values, index)
    finals = values[:, -1]
    row["final_of_mean_curve"], lo, hi = mean_ci(finals)
    row["final_of_mean_curve_step"] = int(steps[-1])
    row["final_of_mean_curve_ci_low"], row["final_of_mean_curve_ci_high"] = lo, hi
    mins = np.array([curve_min(v)[0] for v in values])
    row["mean_of_seed_mins"], lo, hi = mean_ci(mins)
    row["mean_of_seed_mins_ci_low"], row["mean_of_seed_mins_ci_high"] = lo, hi
    return row
