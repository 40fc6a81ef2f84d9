"""Tables over runs: one tidy row per run, and per (experiment, loss) the paper-defined metrics
of the seed-averaged learning curve beside per-seed statistics.

The paper reads "best" off the **seed-averaged curve**: ``min_of_mean_curve``. The mean over
seeds of each seed's own minimum (``mean_of_seed_mins``) is never above it, and the gap grows
with noisy curves. Both are kept, under names that say which is which (see
:data:`SUMMARY_COLUMNS`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from biv.spec.sweeps import improvement_reference

#: The curve each run is scored on: the clean test MSE, or (noisy test labels with known
#: variances) its estimate; see :data:`biv.metrics.METRICS`. Both normalized.
TEST_METRICS = ("mse", "clean_mse_est")
SUMMARY_KEYS = (
    "test_labels",
    "best_test_mse",
    "best_clean_mse_est",
    "best_step",
    "final_test_mse",
    "final_test_mse_raw",
    "final_test_mae_raw",
    "final_clean_mse_est",
    "final_clean_mse_est_se",
    "final_clean_mse_est_raw",
    "final_clean_mse_est_se_raw",
    "final_noisy_mse_raw",
    "final_noisy_mae_raw",
    "skipped_steps",
    "steps",
    "wall_time_s",
    "steps_per_s",
)
N_BOOTSTRAP = 2000
BOOTSTRAP_SEED = 0
LEVEL = 0.95
#: Columns of summary.csv and their meaning (the ``metric`` column's curve, normalized units;
#: "mean curve" is the mean over seeds of the learning curves at each evaluation step).
SUMMARY_COLUMNS = {
    "experiment": "experiment name",
    "loss": "loss name",
    "metric": "the curve summarised: mse (clean test MSE) or clean_mse_est (clean test MSE "
    "estimated from noisy test labels with known variances: noisy MSE - mean variance)",
    "n_seeds": "number of seeds (runs) averaged",
    "min_of_mean_curve": "the paper's best: lowest point of the mean curve",
    "min_of_mean_curve_step": "training step of that lowest point",
    "min_of_mean_curve_ci_low": "95 % percentile bootstrap interval over seeds, low end",
    "min_of_mean_curve_ci_high": "95 % percentile bootstrap interval over seeds, high end",
    "final_of_mean_curve": "last point of the mean curve (= mean of the seeds' final values)",
    "final_of_mean_curve_step": "training step of that last point",
    "final_of_mean_curve_ci_low": "95 % Student-t interval over seeds, low end",
    "final_of_mean_curve_ci_high": "95 % Student-t interval over seeds, high end",
    "final_of_mean_curve_test_se": "clean_mse_est only: standard error over the test set of the "
    "final estimate, mean of the seeds' (a bound for the mean curve's); empty for mse",
    "mean_of_seed_mins": "mean over seeds of each seed's own minimum (not the paper's best)",
    "mean_of_seed_mins_ci_low": "95 % Student-t interval over seeds, low end",
    "mean_of_seed_mins_ci_high": "95 % Student-t interval over seeds, high end",
    "baseline": "loss compared against (L2 by default); empty when none",
    "baseline_experiment": "experiment of the baseline runs (a sweep's base experiment when "
    "only other losses are varied)",
    "n_paired": "seeds present for both this loss and the baseline",
    "rel_improvement_of_min_of_mean_curve": "the paper's improvement over L2: 1 - "
    "min_of_mean_curve / baseline's min_of_mean_curve, on the paired seeds",
    "rel_improvement_of_min_of_mean_curve_ci_low": "95 % paired percentile bootstrap over "
    "seeds, low end",
    "rel_improvement_of_min_of_mean_curve_ci_high": "95 % paired percentile bootstrap over "
    "seeds, high end",
    "mean_of_seed_rel_improvements": "mean over paired seeds of 1 - seed's min / baseline "
    "seed's min (not the paper's improvement)",
    "mean_of_seed_rel_improvements_ci_low": "95 % Student-t interval, low end",
    "mean_of_seed_rel_improvements_ci_high": "95 % Student-t interval, high end",
    "paired_diff_of_seed_mins_mean": "mean over paired seeds of seed's min - baseline seed's min",
    "paired_diff_of_seed_mins_ci_low": "95 % Student-t interval, low end",
    "paired_diff_of_seed_mins_ci_high": "95 % Student-t interval, high end",
    "paired_diff_of_finals_mean": "mean over paired seeds of seed's final - baseline seed's final",
    "paired_diff_of_finals_ci_low": "95 % Student-t interval, low end",
    "paired_diff_of_finals_ci_high": "95 % Student-t interval, high end",
}
#: The columns that compare with the baseline (NaN when there is none).
PAIRED_COLUMNS = list(SUMMARY_COLUMNS)[list(SUMMARY_COLUMNS).index("n_paired") :]


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


def read_curves(metrics_files: Iterable[str | Path]) -> pd.DataFrame:
    """The scored curve (one of :data:`TEST_METRICS`) per evaluation step of each run
    (experiment, loss, seed, step, value, metric); experiment, loss and seed come from the run
    folder ``.../{experiment}/{loss}/seed{N}/``."""
    frames = []
    for file in metrics_files:
        experiment, loss, seed = Path(file).parts[-4:-1]
        frame = pd.read_csv(file, usecols=["step", "split", "metric", "value"])
        frame = frame[(frame["split"] == "test") & frame["metric"].isin(TEST_METRICS)]
        frames.append(
            frame[["step", "value", "metric"]].assign(
                experiment=experiment, loss=loss, seed=int(seed.removeprefix("seed"))
            )
        )
    columns = ["experiment", "loss", "seed", "step", "value", "metric"]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


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


def paired_metrics(
    values: np.ndarray,
    base: np.ndarray,
    boot_values: np.ndarray | None,
    boot_base: np.ndarray | None,
) -> dict:
    """Comparison with the baseline on the same seeds (rows of ``values`` and ``base`` are the
    same seeds in the same order; their steps may differ); NaN without paired seeds.
    ``boot_values``, ``boot_base``: their :func:`bootstrap_mins` (None for fewer than 2 seeds)."""
    n = len(values)
    row = {key: float("nan") for key in PAIRED_COLUMNS}
    row["n_paired"] = n
    if n == 0:
        return row
    ours, theirs = curve_min(values.mean(axis=0))[0], curve_min(base.mean(axis=0))[0]
    name = "rel_improvement_of_min_of_mean_curve"
    row[name] = 1 - ours / theirs
    if boot_values is not None:
        row[f"{name}_ci_low"], row[f"{name}_ci_high"] = percentile_ci(1 - boot_values / boot_base)
    seed_mins = np.array([curve_min(v)[0] for v in values])
    base_mins = np.array([curve_min(v)[0] for v in base])
    name = "mean_of_seed_rel_improvements"
    row[name], row[f"{name}_ci_low"], row[f"{name}_ci_high"] = mean_ci(1 - seed_mins / base_mins)
    for name, diff in (
        ("paired_diff_of_seed_mins", seed_mins - base_mins),
        ("paired_diff_of_finals", values[:, -1] - base[:, -1]),
    ):
        row[f"{name}_mean"], row[f"{name}_ci_low"], row[f"{name}_ci_high"] = mean_ci(diff)
    return row


def baseline_of(experiment: str, experiments: Mapping, sweeps: Mapping) -> tuple[str, str] | None:
    """(experiment, loss) of the runs that ``experiment`` is compared with: its own baseline
    loss, else for a sweep point that varies only other losses, the base experiment's baseline
    (same noise draws); None when there is none."""
    exp = experiments[experiment]
    if exp["baseline"]:
        return experiment, exp["baseline"]
    sweep = sweeps.get(exp["sweep"]) if exp["sweep"] else None
    if sweep is None:
        return None
    base = sweep["experiment"]
    base_loss = experiments[base]["baseline"]
    if improvement_reference(sweep["losses"], sweep["vary"], base_loss) == "base":
        return base, base_loss
    return None


def summary_table(
    curves: pd.DataFrame,
    experiments: Mapping,
    sweeps: Mapping | None = None,
    runs: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per (experiment, loss) with the columns of :data:`SUMMARY_COLUMNS`; ``runs``
    (:func:`runs_table`) gives the test-set standard errors of clean-MSE estimates."""
    sweeps = sweeps or {}
    metric = curves.groupby(["experiment", "loss"])["metric"].first() if "metric" in curves else {}
    test_se = {}
    if runs is not None and "final_clean_mse_est_se" in runs:
        test_se = runs.groupby(["experiment", "loss"])["final_clean_mse_est_se"].mean()
    matrices = {
        key: seed_matrix(group) for key, group in curves.groupby(["experiment", "loss"], sort=True)
    }
    boots: dict[tuple, np.ndarray | None] = {}

    def on_seeds(key: tuple[str, str], chosen: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The curves of ``key`` on the seeds ``chosen`` and their bootstrap minima, computed
        once per (curves, seeds): the resamples depend only on the number of seeds."""
        seeds, _, values = matrices[key]
        values = values[np.searchsorted(seeds, chosen)]
        memo = (key, tuple(chosen))
        if memo not in boots:
            boots[memo] = (
                bootstrap_mins(values, bootstrap_weights(len(values))) if len(values) > 1 else None
            )
        return values, boots[memo]

    rows = []
    for (experiment, loss), (seeds, steps, values) in matrices.items():
        _, boot = on_seeds((experiment, loss), seeds)
        row = {
            "experiment": experiment,
            "loss": loss,
            "metric": metric.get((experiment, loss), "mse"),
            **curve_metrics(values, steps, boot),
            "final_of_mean_curve_test_se": test_se.get((experiment, loss), float("nan")),
        }
        ref = baseline_of(experiment, experiments, sweeps)
        row["baseline"], row["baseline_experiment"] = (ref[1], ref[0]) if ref else ("", "")
        if ref is not None and ref in matrices:
            common = np.intersect1d(seeds, matrices[ref][0])
            (mine, boot_mine), (theirs, boot_theirs) = (
                on_seeds((experiment, loss), common),
                on_seeds(ref, common),
            )
        else:
            mine = theirs = np.empty((0, 0))
            boot_mine = boot_theirs = None
        row.update(paired_metrics(mine, theirs, boot_mine, boot_theirs))
        rows.append(row)
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def runs_table(
    summary_files: Iterable[str | Path], params_files: Iterable[str | Path], experiments: dict
) -> pd.DataFrame:
    """One row per run: what it was (experiment, dataset, noise, loss and its parameters,
    seed, swept values) and how it scored (its own best and final clean test MSE)."""
    rows = []
    for summary_file, params_file in zip(summary_files, params_files, strict=True):
        summary = json.loads(Path(summary_file).read_text())
        params = json.loads(Path(params_file).read_text())
        exp = experiments[params["experiment"]]
        row = {
            "experiment": params["experiment"],
            "dataset": exp["dataset"],
            "noise": exp["noise"] or "none",
            "model": exp["model"],
            "loss": params["loss_name"],
            "loss_type": params["loss"]["type"],
            "epsilon": params["loss"].get("epsilon"),
            "ratio": params["loss"].get("ratio"),
            "threshold": params["loss"].get("threshold"),
            "seed": params["seed"],
            "batch_size": params["training"]["batch_size"],
            "lr": params["training"]["lr"],
            "sweep": exp["sweep"] or "",
        }
        for path, value in exp["sweep_values"].items():
            row[f"vary:{path}"] = json.dumps(value) if isinstance(value, dict | list) else value
        row.update({key: summary[key] for key in SUMMARY_KEYS if key in summary})
        rows.append(row)
    frame = pd.DataFrame(rows)
    return frame.sort_values(["experiment", "loss", "seed"], kind="stable").reset_index(drop=True)


def _cell(row: pd.Series, name: str, mean_key: str | None = None, percent: bool = False) -> str:
    mean = row[mean_key or name]
    low, high = row[f"{name}_ci_low"], row[f"{name}_ci_high"]
    if pd.isna(mean):
        return "–"
    fmt = "{:.1%}" if percent else "{:.4g}"
    text = fmt.format(mean)
    return text if pd.isna(low) else f"{text} [{fmt.format(low)}, {fmt.format(high)}]"


def summary_html(summary: pd.DataFrame) -> str:
    """summary.csv as a readable HTML page (value [95 % interval] per cell) with the column
    definitions, for the Snakemake report."""
    table = pd.DataFrame(
        {
            "experiment": summary["experiment"],
            "loss": summary["loss"],
            "metric": summary["metric"],
            "seeds": summary["n_seeds"],
            "min of mean curve (paper's best) [bootstrap CI]": [
                _cell(r, "min_of_mean_curve") for _, r in summary.iterrows()
            ],
            "at step": summary["min_of_mean_curve_step"],
            "final of mean curve [t CI]": [
                _cell(r, "final_of_mean_curve") for _, r in summary.iterrows()
            ],
            "mean of seed minima [t CI]": [
                _cell(r, "mean_of_seed_mins") for _, r in summary.iterrows()
            ],
            "baseline": [
                f"{r['baseline_experiment']}/{r['baseline']}" if r["baseline"] else "–"
                for _, r in summary.iterrows()
            ],
            "improvement, paper's definition [paired bootstrap CI]": [
                _cell(r, "rel_improvement_of_min_of_mean_curve", percent=True)
                for _, r in summary.iterrows()
            ],
            "mean of per-seed improvements [t CI]": [
                _cell(r, "mean_of_seed_rel_improvements", percent=True)
                for _, r in summary.iterrows()
            ],
            "paired diff. of seed minima [t CI]": [
                _cell(r, "paired_diff_of_seed_mins", "paired_diff_of_seed_mins_mean")
                for _, r in summary.iterrows()
            ],
        }
    )
    definitions = "".join(
        f"<dt><code>{name}</code></dt><dd>{text}</dd>" for name, text in SUMMARY_COLUMNS.items()
    )
    return html_page(
        "Summary: clean test MSE per experiment and loss",
        "<p>Clean test MSE in normalized label units (metric <code>mse</code>), or, for test "
        "labels with known noise variances, its estimate (<code>clean_mse_est</code>: the MSE "
        "against the noisy labels minus their mean variance). The <em>mean curve</em> is the "
        "mean over "
        "seeds of the learning curves at each evaluation step; the paper's best is its lowest "
        "point, the paper's improvement over L2 is 1 - min(mean curve) / min(mean L2 curve).</p>"
        + table.to_html(index=False, border=0)
        + f"<h2>Columns of summary.csv</h2><dl>{definitions}</dl>",
    )


def html_page(title: str, body: str) -> str:
    """A small self-contained HTML page (for tables shown in the Snakemake report)."""
    style = (
        "body{font-family:sans-serif;font-size:14px;margin:1em}"
        "table{border-collapse:collapse;margin:0.5em 0}"
        "th,td{border:1px solid #ccc;padding:3px 6px;text-align:left}"
        "th{background:#f0f0f0}dt{font-weight:bold;margin-top:0.3em}"
    )
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{style}</style></head><body><h1>{title}</h1>{body}</body></html>\n"
    )


def benchmarks_table(
    files: Iterable[str | Path], root: str | Path, runs: dict[str, int]
) -> pd.DataFrame:
    """Snakemake ``benchmark:`` files as one table, with rule and job columns, and the number of
    runs a job trained (``runs``, by benchmark file: a train job's pack size; empty elsewhere)."""
    frames = []
    for file in files:
        rel = Path(file).relative_to(root)
        frame = pd.read_csv(file, sep="\t")
        frame.insert(0, "runs", runs.get(str(file)))
        frame.insert(0, "job", str(rel.with_suffix("").relative_to(rel.parts[0])))
        frame.insert(0, "rule", rel.parts[0])
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
