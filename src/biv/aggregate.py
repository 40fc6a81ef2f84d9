"""Tables over runs: one tidy row per run, and per (experiment, loss) means with 95 % CIs."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

SCORES = ("best_test_mse", "final_test_mse")
SUMMARY_KEYS = (
    "best_test_mse",
    "best_step",
    "final_test_mse",
    "final_test_mse_raw",
    "final_test_mae_raw",
    "skipped_steps",
    "steps",
    "wall_time_s",
    "steps_per_s",
)


def mean_ci(values: Iterable[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and the two-sided Student-t confidence interval of the mean (NaN for n < 2)."""
    x = np.asarray(list(values), dtype=float)
    mean = float(x.mean()) if x.size else float("nan")
    if x.size < 2:
        return mean, float("nan"), float("nan")
    half = stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size)
    return mean, mean - half, mean + half


def runs_table(
    summary_files: Iterable[str | Path], params_files: Iterable[str | Path], experiments: dict
) -> pd.DataFrame:
    """One row per run: what it was (experiment, dataset, noise, loss and its parameters,
    seed, swept values) and how it scored."""
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
        row.update({key: summary[key] for key in SUMMARY_KEYS})
        rows.append(row)
    frame = pd.DataFrame(rows)
    return frame.sort_values(["experiment", "loss", "seed"], kind="stable").reset_index(drop=True)


def summary_table(runs: pd.DataFrame, experiments: dict) -> pd.DataFrame:
    """Per experiment and loss: mean and 95 % CI over seeds of the best and final clean test
    MSE, and the per-seed paired difference (and relative improvement) against the baseline."""
    rows = []
    for (experiment, loss), group in runs.groupby(["experiment", "loss"], sort=True):
        row = {"experiment": experiment, "loss": loss, "n_seeds": len(group)}
        for score in SCORES:
            row[f"{score}_mean"], row[f"{score}_ci_low"], row[f"{score}_ci_high"] = mean_ci(
                group[score]
            )
        baseline = experiments[experiment]["baseline"]
        row["baseline"] = baseline or ""
        base = runs[(runs["experiment"] == experiment) & (runs["loss"] == baseline)]
        paired = group.merge(base, on="seed", suffixes=("", "_base"))
        for score in SCORES:
            diff = paired[score] - paired[f"{score}_base"]
            rel = 1 - paired[score] / paired[f"{score}_base"]
            row[f"diff_{score}_mean"], row[f"diff_{score}_ci_low"], row[f"diff_{score}_ci_high"] = (
                mean_ci(diff) if len(paired) else (np.nan,) * 3
            )
            row[f"rel_improvement_{score}_mean"], lo, hi = (
                mean_ci(rel) if len(paired) else (np.nan,) * 3
            )
            row[f"rel_improvement_{score}_ci_low"], row[f"rel_improvement_{score}_ci_high"] = lo, hi
        row["n_paired"] = len(paired)
        rows.append(row)
    return pd.DataFrame(rows)


def benchmarks_table(files: Iterable[str | Path], root: str | Path) -> pd.DataFrame:
    """Snakemake ``benchmark:`` files as one table, with rule and job columns."""
    frames = []
    for file in files:
        rel = Path(file).relative_to(root)
        frame = pd.read_csv(file, sep="\t")
        frame.insert(0, "job", str(rel.with_suffix("").relative_to(rel.parts[0])))
        frame.insert(0, "rule", rel.parts[0])
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
