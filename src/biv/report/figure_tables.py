"""The numbers each figure draws, as tidy tables computed before any drawing (and written beside
the figure as CSV): the learning curves' means and bands, each seed's best and final values,
and a sweep's per-point values with their intervals. :mod:`biv.report.plots` draws these
tables and computes no statistic itself."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from biv.config.figures import Figure
from biv.report.figure_text import value_label
from biv.report.statistics import band, seed_matrix

#: The scores of a run's summary.json by its test labels: (metric, best key, final key).
SEED_SCORES = {
    "clean": ("mse", "best_test_mse", "final_test_mse"),
    "noisy": ("clean_mse_est", "best_clean_mse_est", "final_clean_mse_est"),
}
#: What each quantity of the per-seed table is.
SEED_QUANTITIES = {
    "best": "lowest point of the seed's own curve",
    "final": "last evaluation",
}
CURVE_COLUMNS = ["panel", "panel_title", "role", "experiment", "loss", "label", "metric"]
CURVE_COLUMNS += ["step", "n_seeds", "mean", "band", "low", "high"]
SEED_COLUMNS = ["panel", "panel_title", "role", "experiment", "loss", "label", "metric"]
SEED_COLUMNS += ["seed", "quantity", "value"]
NOISE_COLUMNS = ["seed", "fraction", "variance"]
SWEEP_COLUMNS = ["x", "x_label", "series", "series_index", "loss", "metric", "best", "best_low"]
SWEEP_COLUMNS += ["best_high", "baseline", "improvement", "improvement_low", "improvement_high"]


def drawn_curves(figure: Figure) -> list[dict]:
    """Each curve a learning-curve figure draws, panel by panel in the configured order: its
    panel (index and title), role (``loss``, or ``reference`` for the black line), experiment,
    loss and label."""
    curves = []
    for index, panel in enumerate(figure.panels):
        where = {"panel": index, "panel_title": panel.title}
        for loss in panel.losses:
            curves.append(where | {"role": "loss", "experiment": panel.experiment, "loss": loss})
            curves[-1]["label"] = panel.labels[loss]
        ref = panel.reference
        if ref is not None:
            curves.append(
                where
                | {"role": "reference", "experiment": ref.experiment, "loss": ref.loss}
                | {"label": ref.label}
            )
    return curves


def _rows_of(table: pd.DataFrame, experiment: str, loss: str, what: str) -> pd.DataFrame:
    rows = table[(table["experiment"] == experiment) & (table["loss"] == loss)]
    if rows.empty:
        raise ValueError(f"no {what} of experiment {experiment!r}, loss {loss!r}")
    return rows


def learning_curve_table(figure: Figure, curves: pd.DataFrame) -> pd.DataFrame:
    """One row per (drawn curve, evaluation step): the mean over seeds and the panel's band
    (:func:`biv.report.statistics.band`; ``band`` is ``none`` and the edges NaN where there
    is none), from ``curves`` (:func:`biv.report.tables.read_curves`)."""
    frames = []
    for curve in drawn_curves(figure):
        rows = _rows_of(curves, curve["experiment"], curve["loss"], "learning curves")
        _, steps, values = seed_matrix(rows)
        kind = figure.panels[curve["panel"]].band
        edges = band(values, kind)
        low, high = edges if edges is not None else (np.nan, np.nan)
        metric = rows["metric"].iloc[0] if "metric" in rows else "mse"
        frames.append(
            pd.DataFrame(
                curve
                | {"metric": metric, "step": steps, "n_seeds": len(values)}
                | {"mean": values.mean(axis=0), "band": kind if edges is not None else "none"}
                | {"low": low, "high": high}
            )
        )
    return pd.concat(frames, ignore_index=True)[CURVE_COLUMNS]


def seed_scores(summary_files: Iterable[str | Path], runs: Iterable[Sequence]) -> pd.DataFrame:
    """Each run's own best and final scores, from its summary.json (the values of runs.csv):
    experiment, loss, seed, metric (:data:`SEED_SCORES`), best, final; ``runs``: the
    (experiment, loss, seed) of each file, as the plan knows them."""
    rows = []
    for file, (experiment, loss, seed) in zip(summary_files, runs, strict=True):
        summary = json.loads(Path(file).read_text())
        metric, best, final = SEED_SCORES[summary["test_labels"]]
        rows.append(
            {"experiment": experiment, "loss": loss, "seed": int(seed), "metric": metric}
            | {"best": summary[best], "final": summary[final]}
        )
    return pd.DataFrame(rows, columns=["experiment", "loss", "seed", "metric", "best", "final"])


def seed_table(figure: Figure, scores: pd.DataFrame) -> pd.DataFrame:
    """One row per (drawn curve of the figure, seed, quantity of :data:`SEED_QUANTITIES`): the
    run's own score (``scores``: :func:`seed_scores`), in the figure's order."""
    frames = []
    for curve in drawn_curves(figure):
        rows = _rows_of(scores, curve["experiment"], curve["loss"], "run scores")
        rows = rows.sort_values("seed")
        for quantity in SEED_QUANTITIES:
            frames.append(
                pd.DataFrame(
                    curve
                    | {"metric": rows["metric"].to_numpy(), "seed": rows["seed"].to_numpy()}
                    | {"quantity": quantity, "value": rows[quantity].to_numpy()}
                )
            )
    return pd.concat(frames, ignore_index=True)[SEED_COLUMNS]


def sweep_table(sweep: Mapping, summary: pd.DataFrame) -> pd.DataFrame:
    """One row per (sweep point, loss): position and label of the first swept value, the
    series (the other swept values, and the index of their combination in ``vary``'s grid),
    the paper's best test loss and the improvement over L2, each with its interval (from
    summary.csv); in the order of the sweep's losses and values."""
    paths = list(sweep["vary"])
    shape = [len(sweep["vary"][p]) for p in paths[1:]]
    rows = []
    for point in sweep["points"]:
        values = point["values"]
        order = [sweep["vary"][p].index(values[p]) for p in paths[1:]]
        where = {
            "x": sweep["vary"][paths[0]].index(values[paths[0]]),
            "x_label": value_label(values[paths[0]]),
            "series": ", ".join(value_label(values[p]) for p in paths[1:]),
            "series_index": int(np.ravel_multi_index(order, shape)) if order else 0,
        }
        for _, row in summary[summary["experiment"] == point["experiment"]].iterrows():
            rows.append(where | _sweep_values(row))
    table = pd.DataFrame(rows, columns=SWEEP_COLUMNS)
    if table.empty:
        raise ValueError(f"sweep {sweep['name']!r}: no rows in the summary table")
    losses = list(sweep.get("losses") or sorted(set(table["loss"])))
    rank = table["loss"].map(lambda loss: losses.index(loss) if loss in losses else len(losses))
    table = table.assign(rank=rank).sort_values(
        ["rank", "loss", "series_index", "x"], kind="stable"
    )
    return table.drop(columns="rank").reset_index(drop=True)


def _sweep_values(row: pd.Series) -> dict:
    """A summary.csv row's values in a sweep figure: the best and the improvement over L2."""
    best, improvement = "min_of_mean_curve", "rel_improvement_of_min_of_mean_curve"
    return {
        "loss": row["loss"],
        "metric": row.get("metric", "mse"),
        "best": row[best],
        "best_low": row[f"{best}_ci_low"],
        "best_high": row[f"{best}_ci_high"],
        "baseline": row["baseline"] if isinstance(row["baseline"], str) else "",
        "improvement": row[improvement],
        "improvement_low": row[f"{improvement}_ci_low"],
        "improvement_high": row[f"{improvement}_ci_high"],
    }


def noise_variance_table(variances: Mapping[int, np.ndarray], points: int = 201) -> pd.DataFrame:
    """The distribution of each seed's drawn label-noise variances σ² (``variances``: seed ->
    one value per training label) as ``points`` quantiles: one row per (seed, fraction of the
    labels at or below ``variance``), from 0 (the smallest) to 1 (the largest)."""
    fractions = np.linspace(0.0, 1.0, points)
    frames = [
        pd.DataFrame(
            {"seed": int(seed), "fraction": fractions, "variance": np.quantile(drawn, fractions)}
        )
        for seed, drawn in sorted(variances.items())
    ]
    return pd.concat(frames, ignore_index=True)[NOISE_COLUMNS]
