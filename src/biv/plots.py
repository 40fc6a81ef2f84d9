"""Figures: learning curves (clean test MSE vs step, mean and 95 % CI over seeds) and sweeps."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from scipy import stats  # noqa: E402

from biv.aggregate import mean_ci  # noqa: E402

TEST_METRIC = "mse"


def read_curves(metrics_files: Iterable[str | Path]) -> pd.DataFrame:
    """Clean test MSE per step of each run; experiment, loss and seed come from the run folder
    ``.../{experiment}/{loss}/seed{seed}/metrics.csv``."""
    frames = []
    for file in metrics_files:
        experiment, loss, seed = Path(file).parts[-4:-1]
        frame = pd.read_csv(file)
        frame = frame[(frame["split"] == "test") & (frame["metric"] == TEST_METRIC)]
        frames.append(
            frame[["step", "value"]].assign(
                experiment=experiment, loss=loss, seed=int(seed.removeprefix("seed"))
            )
        )
    return pd.concat(frames, ignore_index=True)


def curve_band(curves: pd.DataFrame) -> pd.DataFrame:
    """Mean and Student-t 95 % interval over seeds at every step, per (experiment, loss)."""
    grouped = curves.groupby(["experiment", "loss", "step"])["value"]
    band = grouped.agg(["mean", "std", "count"]).reset_index()
    dof = np.maximum(band["count"] - 1, 1)
    half = stats.t.ppf(0.975, dof) * band["std"].fillna(0) / np.sqrt(band["count"])
    return band.assign(low=band["mean"] - half, high=band["mean"] + half)


def learning_curves(figure: dict, curves: pd.DataFrame, png: str | Path, pdf: str | Path) -> None:
    """One panel per experiment, one line per loss, optional dashed reference curve."""
    band = curve_band(curves)
    panels = figure["panels"]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False)
    palette = dict(zip(_all_losses(figure), sns.color_palette("tab10", 10), strict=False))
    for ax, panel in zip(axes[0], panels, strict=True):
        exp = band[band["experiment"] == panel["experiment"]]
        losses = panel["losses"]
        labels = panel.get("labels", {})
        for loss in losses:
            line = exp[exp["loss"] == loss]
            ax.plot(line["step"], line["mean"], color=palette[loss], label=labels.get(loss, loss))
            ax.fill_between(line["step"], line["low"], line["high"], color=palette[loss], alpha=0.2)
        ref = panel.get("reference")
        if ref is not None:
            line = band[(band["experiment"] == ref["experiment"]) & (band["loss"] == ref["loss"])]
            ax.plot(line["step"], line["mean"], "k--", label=ref.get("label", "No noise - L2"))
        ax.set_ylim(bottom=0)
        ax.set_title(panel.get("title", panel["experiment"]))
        ax.set_xlabel("Training steps")
        ax.set_ylabel(f"Test loss on true labels (mean of {_n_seeds(curves, panel)} runs)")
        ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
    if figure.get("title"):
        fig.suptitle(figure["title"])
    fig.tight_layout()
    fig.savefig(png, dpi=150)
    fig.savefig(pdf)
    plt.close(fig)


def _all_losses(figure: dict) -> list[str]:
    return list(dict.fromkeys(loss for panel in figure["panels"] for loss in panel["losses"]))


def _n_seeds(curves: pd.DataFrame, panel: dict) -> int:
    return curves.loc[curves["experiment"] == panel["experiment"], "seed"].nunique()


def sweep_plot(sweep: dict, runs: pd.DataFrame, png: str | Path, pdf: str | Path) -> None:
    """Best clean test MSE (mean and 95 % CI over seeds) against the swept value, per loss;
    a second swept parameter becomes one panel per value."""
    points = runs[runs["sweep"] == sweep["name"]].copy()
    paths = list(sweep["vary"])
    for path in paths:
        order = [_label(v) for v in sweep["vary"][path]]
        column = points[f"vary:{path}"].map(_label)
        points[path] = pd.Categorical(column, categories=order, ordered=True)
    grid = sns.catplot(
        data=points,
        x=paths[0],
        y="best_test_mse",
        hue="loss",
        col=paths[1] if len(paths) > 1 else None,
        kind="point",
        errorbar=lambda x: mean_ci(x)[1:],
        dodge=0.2 if points["loss"].nunique() > 1 else False,
        height=4,
        aspect=1.2,
    )
    grid.set_axis_labels(paths[0], "Best test loss on true labels")
    grid.figure.suptitle(sweep.get("title", sweep["name"]))
    grid.figure.tight_layout()
    grid.savefig(png, dpi=150)
    grid.savefig(pdf)
    plt.close(grid.figure)


def _label(value) -> str:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return value
    if isinstance(value, dict):
        return ", ".join(
            f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in value.items()
        )
    return f"{value:g}" if isinstance(value, float) else str(value)
