"""Tables over runs: one tidy row per run (runs.csv), per (experiment, loss) the paper-defined
metrics of the seed-averaged learning curve beside per-seed statistics (summary.csv, from
:mod:`biv.report.statistics`), and the jobs' benchmarks."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from biv.config.sweeps import improvement_reference
from biv.report.statistics import curve_metrics, curve_min, mean_ci, ratio_ci, seed_matrix

#: The curve each run is scored on: the clean test MSE, or (noisy test labels with known
#: variances) its estimate; see :data:`biv.train.metrics.METRICS`. Both normalized.
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
    "min_of_mean_curve_ci_low": "95 % interval, low end: the union of the Student-t intervals "
    "of the seeds' values at that step and of their cross-fitted values (each seed's value at "
    "the step where the other seeds' mean curve is lowest; coverage: biv.report.coverage)",
    "min_of_mean_curve_ci_high": "the same interval, high end",
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
    "rel_improvement_of_min_of_mean_curve_ci_low": "95 % Student-t interval of the ratio of the "
    "paired seeds' mean values at the two minima's steps (linearized), low end",
    "rel_improvement_of_min_of_mean_curve_ci_high": "the same interval, high end",
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
    "paired_diff_of_finals_test_se": "clean_mse_est only: standard error over the test set of "
    "a seed's paired difference of final estimates (both losses scored on the same noisy test "
    "labels, so their sigma^2 terms cancel), mean of the paired seeds' (a bound for the mean's); "
    "empty for mse",
}


#: The columns that compare with the baseline (NaN when there is none).
PAIRED_COLUMNS = list(SUMMARY_COLUMNS)[list(SUMMARY_COLUMNS).index("n_paired") :]


def results_run_files(results: str | Path, experiment: str, loss: str, file: str) -> list[Path]:
    """The file ``file`` (e.g. ``metrics.csv``) of every run of (``experiment``, ``loss``) under
    RESULTS/runs/<experiment>/<loss>/<pack>/seed<seed>/, by seed; FileNotFoundError when there
    is none (for the tools that read a finished workflow's results)."""
    found = Path(results, "runs", experiment, loss).glob(f"*/seed*/{file}")
    files = sorted(found, key=lambda path: int(path.parent.name.removeprefix("seed")))
    if not files:
        raise FileNotFoundError(f"no runs of {experiment}/{loss} under {Path(results, 'runs')}")
    return files


def read_curves(metrics_files: Iterable[str | Path], runs: Iterable[Sequence]) -> pd.DataFrame:
    """The scored curve (one of :data:`TEST_METRICS`) per evaluation step of each run
    (experiment, loss, seed, step, value, metric); ``runs``: the (experiment, loss, seed) of
    each metrics file, as the plan knows them (never taken from its path)."""
    frames = []
    for file, (experiment, loss, seed) in zip(metrics_files, runs, strict=True):
        frame = pd.read_csv(file, usecols=["step", "split", "metric", "value"])
        frame = frame[(frame["split"] == "test") & frame["metric"].isin(TEST_METRICS)]
        frames.append(
            frame[["step", "value", "metric"]].assign(
                experiment=experiment, loss=loss, seed=int(seed)
            )
        )
    columns = ["experiment", "loss", "seed", "step", "value", "metric"]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def paired_metrics(values: np.ndarray, base: np.ndarray) -> dict:
    """Comparison with the baseline on the same seeds (rows of ``values`` and ``base`` are the
    same seeds in the same order; their steps may differ); NaN without paired seeds. The
    paper's improvement 1 - min(mean curve) / min(baseline's mean curve) gets the interval of
    :func:`ratio_ci` of the seeds' values at the two minima's steps."""
    n = len(values)
    row = {key: float("nan") for key in PAIRED_COLUMNS}
    row["n_paired"] = n
    if n == 0:
        return row
    (_, mine), (_, theirs) = curve_min(values.mean(axis=0)), curve_min(base.mean(axis=0))
    name = "rel_improvement_of_min_of_mean_curve"
    if mine >= 0 and theirs >= 0:
        ratio, low, high = ratio_ci(values[:, mine], base[:, theirs])
        row[name], row[f"{name}_ci_low"], row[f"{name}_ci_high"] = 1 - ratio, 1 - high, 1 - low
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


def read_noisy_predictions(
    prediction_files: Iterable[str | Path],
    params_files: Iterable[str | Path],
    run_files: Iterable[str | Path],
    runs: Iterable[Sequence],
) -> dict[tuple, dict]:
    """The final test predictions of the runs scored on noisy test labels, by (experiment,
    loss, seed) as in :func:`read_curves`: noisy labels ``y``, predictions ``pred`` (raw units,
    from predictions.csv; float64 tensors), the samples' ``weights`` in the logged test MSE
    (the run's ``training.eval_protocol``) and ``y_std``; runs on clean test labels are left
    out."""
    out = {}
    for pred_file, params_file, run_file, (experiment, loss, seed) in zip(
        prediction_files, params_files, run_files, runs, strict=True
    ):
        if "y_noisy" not in pd.read_csv(pred_file, nrows=0):
            continue
        table = pd.read_csv(pred_file)
        import torch

        from biv.train.metrics import eval_weights  # torch: only for noisy test labels

        training = json.loads(Path(params_file).read_text())["training"]
        protocol, batch = training["eval_protocol"], training["eval_batch_size"]
        out[(experiment, loss, int(seed))] = {
            "y": torch.tensor(table["y_noisy"].to_numpy(float)),
            "pred": torch.tensor(table["y_pred"].to_numpy(float)),
            "weights": eval_weights(len(table), protocol, batch),
            "y_std": float(json.loads(Path(run_file).read_text())["run"]["y_std"]),
        }
    return out


def paired_test_se(predictions: Mapping[tuple, dict], key: tuple, ref: tuple, seeds) -> float:
    """Mean over ``seeds`` of the test-set standard error of the paired difference of final
    clean-MSE estimates of ``key`` and ``ref`` (experiment, loss), normalized units
    (:func:`biv.train.metrics.paired_diff_se`); NaN unless every seed of both is scored on noisy
    test labels."""
    pairs = [(predictions.get((*key, s)), predictions.get((*ref, s))) for s in seeds]
    if not pairs or any(a is None or b is None for a, b in pairs):
        return float("nan")
    from biv.train.metrics import paired_diff_se

    ses = []
    for mine, theirs in pairs:
        if not bool((mine["y"] == theirs["y"]).all()):
            raise ValueError(f"aggregate: {key} and {ref} were scored on different test labels")
        se = paired_diff_se(mine["y"], mine["pred"], theirs["pred"], mine["weights"])
        ses.append(se / mine["y_std"] ** 2)
    return float(np.mean(ses))


def summary_table(
    curves: pd.DataFrame,
    experiments: Mapping,
    sweeps: Mapping | None = None,
    runs: pd.DataFrame | None = None,
    predictions: Mapping[tuple, dict] | None = None,
) -> pd.DataFrame:
    """One row per (experiment, loss) with the columns of :data:`SUMMARY_COLUMNS`; ``runs``
    (:func:`runs_table`) gives the test-set standard errors of clean-MSE estimates,
    ``predictions`` (:func:`read_noisy_predictions`) those of their paired differences."""
    sweeps = sweeps or {}
    predictions = predictions or {}
    metric = curves.groupby(["experiment", "loss"])["metric"].first() if "metric" in curves else {}
    test_se = {}
    if runs is not None and "final_clean_mse_est_se" in runs:
        test_se = runs.groupby(["experiment", "loss"])["final_clean_mse_est_se"].mean()
    matrices = {
        key: seed_matrix(group) for key, group in curves.groupby(["experiment", "loss"], sort=True)
    }

    def on_seeds(key: tuple[str, str], chosen: np.ndarray) -> np.ndarray:
        seeds, _, values = matrices[key]
        return values[np.searchsorted(seeds, chosen)]

    rows = []
    for (experiment, loss), (seeds, steps, values) in matrices.items():
        row = {
            "experiment": experiment,
            "loss": loss,
            "metric": metric.get((experiment, loss), "mse"),
            **curve_metrics(values, steps),
            "final_of_mean_curve_test_se": test_se.get((experiment, loss), float("nan")),
        }
        ref = baseline_of(experiment, experiments, sweeps)
        row["baseline"], row["baseline_experiment"] = (ref[1], ref[0]) if ref else ("", "")
        if ref is not None and ref in matrices:
            common = np.intersect1d(seeds, matrices[ref][0])
            mine, theirs = on_seeds((experiment, loss), common), on_seeds(ref, common)
        else:
            mine = theirs = np.empty((0, 0))
        row.update(paired_metrics(mine, theirs))
        if ref is not None and ref in matrices:
            row["paired_diff_of_finals_test_se"] = paired_test_se(
                predictions, (experiment, loss), ref, common
            )
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
