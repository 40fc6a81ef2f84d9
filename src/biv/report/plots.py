"""Figures: learning curves in the paper's layout (clean test MSE of the seed-averaged curve vs
step) and sweep figures (the paper's best test loss and the improvement over L2 against the
swept value). matplotlib is imported only by the functions that draw."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from biv.config.figures import BANDS, PALETTE, TYPE_COLORS, Figure, Panel
from biv.report.figure_text import (
    AUTO_YLIM_HIGH,
    AUTO_YLIM_LOW,
    AXIS_QUANTITY,
    axis_quantity,
    value_label,
)
from biv.report.statistics import mean_ci, seed_matrix

THICK, THIN, REFERENCE_WIDTH = 2.6, 1.1, 1.8
#: Sweep figures: loss types taken from the loss names (the sweep's rule params carry no types).
LINE_STYLES = ("-", "--", ":", "-.")
#: Learning curves: the first curve drawn is solid, each later one gets the next of these dash
#: patterns (cycled), so a curve lying exactly on an earlier one still shows through its gaps.
DASHES = (
    (0, (6, 2)),
    (0, (2, 1.5)),
    (0, (6, 2, 1.5, 2)),
    (0, (1, 1.5)),
    (0, (10, 3)),
    (0, (4, 2, 1, 2, 1, 2)),
    (0, (3, 3)),
    (0, (8, 2, 2, 2)),
)


def curve_style(index: int) -> str | tuple:
    """Line style of the ``index``-th curve drawn in a learning-curve panel."""
    return "-" if index == 0 else DASHES[(index - 1) % len(DASHES)]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def band(values: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Low and high edge of the shaded band around the mean of ``values`` (seeds x steps):
    ``std`` mean ± 1 standard deviation, ``ci`` the 95 % Student-t interval of the mean (both
    clipped at 0), ``range`` lowest to highest seed; None for ``none`` or a single seed."""
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


def auto_ylim(
    mean_curves: Mapping[str, np.ndarray], emphasis: Sequence[str]
) -> tuple[float, float]:
    """The informative band of a panel: from AUTO_YLIM_LOW x the lowest minimum of the mean
    curves to AUTO_YLIM_HIGH x the highest minimum among the emphasised ones (all curves when
    none is emphasised). Minima, not the first steps, set the range."""
    mins = {name: np.nanmin(np.where(np.isfinite(c), c, np.nan)) for name, c in mean_curves.items()}
    mins = {name: m for name, m in mins.items() if np.isfinite(m)}
    if not mins:
        return 0.0, 1.0
    top = [mins[name] for name in emphasis if name in mins] or list(mins.values())
    low = AUTO_YLIM_LOW * min(mins.values())
    high = AUTO_YLIM_HIGH * max(top)
    if not high > low:  # all minima 0: fall back to the whole range of the curves
        high = max(
            float(np.nanmax(np.where(np.isfinite(c), c, np.nan))) for c in mean_curves.values()
        )
        high = high if high > low else low + 1.0
    return float(low), float(high)


def _matrix(curves: pd.DataFrame, experiment: str, loss: str) -> tuple[np.ndarray, np.ndarray]:
    rows = curves[(curves["experiment"] == experiment) & (curves["loss"] == loss)]
    if rows.empty:
        raise ValueError(f"no learning curves of experiment {experiment!r}, loss {loss!r}")
    _, steps, values = seed_matrix(rows)
    return steps, values


def _seeds_text(counts: set[int]) -> str:
    low, high = min(counts), max(counts)
    return f"{low} seed{'s' * (high > 1)}" if low == high else f"{low}–{high} seeds"


def _metrics(curves: pd.DataFrame, panel: Panel) -> set:
    """The test metrics of the curves a panel draws (``mse`` for curves without the column)."""
    if "metric" not in curves:
        return {"mse"}
    drawn = (curves["experiment"] == panel.experiment) & curves["loss"].isin(panel.losses)
    ref = panel.reference
    if ref is not None:
        drawn |= (curves["experiment"] == ref.experiment) & (curves["loss"] == ref.loss)
    return set(curves.loc[drawn, "metric"])


def draw_learning_curves(figure: Figure, curves: pd.DataFrame, batch_sizes: Mapping[str, int]):
    """The matplotlib Figure of a learning-curve figure: one panel per experiment, the mean
    curve of each loss (emphasised losses thick, drawn first) with its band, the reference
    in black; every curve after the first in its own dash pattern (:func:`curve_style`)."""
    plt = _pyplot()
    fig, axes = plt.subplots(
        1, len(figure.panels), figsize=(5.6 * len(figure.panels), 4.3), squeeze=False
    )
    for ax, panel in zip(axes[0], figure.panels, strict=True):
        _draw_panel(ax, panel, curves, batch_sizes.get(panel.experiment))
    if figure.title:
        fig.suptitle(figure.title)
    fig.tight_layout()
    return fig


def _draw_panel(ax, panel: Panel, curves: pd.DataFrame, batch: int | None) -> None:
    # thick lines first: the thin, dashed ones drawn over them hide little of them
    lines = sorted(panel.losses, key=lambda loss: loss not in panel.emphasis)
    means, seeds, handles = {}, set(), {}
    for index, loss in enumerate(lines):
        thick = loss in panel.emphasis
        steps, values = _matrix(curves, panel.experiment, loss)
        means[loss] = values.mean(axis=0)
        seeds.add(len(values))
        color = panel.colors[loss]
        (handles[loss],) = ax.plot(
            steps,
            means[loss],
            color=color,
            lw=THICK if thick else THIN,
            ls=curve_style(index),
            label=panel.labels[loss],
        )
        edges = band(values, panel.band)
        if edges is not None:
            ax.fill_between(steps, *edges, color=color, alpha=0.22 if thick else 0.1, lw=0)
    ref = panel.reference
    if ref is not None:
        steps, values = _matrix(curves, ref.experiment, ref.loss)
        means[f"reference:{ref.loss}"] = values.mean(axis=0)
        (handles[None],) = ax.plot(
            steps,
            means[f"reference:{ref.loss}"],
            color=ref.color,
            lw=REFERENCE_WIDTH,
            ls=curve_style(len(lines)),
            label=ref.label,
        )
        edges = band(values, panel.band)
        if edges is not None:
            ax.fill_between(steps, *edges, color=ref.color, alpha=0.15, lw=0)
    ax.set_ylim(*(auto_ylim(means, panel.emphasis) if panel.ylim == "auto" else panel.ylim))
    ax.set_xlim(left=0)
    ax.set_title(panel.title)
    ax.set_xlabel("Training steps" + (f" (batch size: {batch})" if batch else ""))
    quantity = axis_quantity(_metrics(curves, panel))
    wrap = "\n" if len(quantity) > len(AXIS_QUANTITY) else " "  # fits the panel
    ax.set_ylabel(f"{quantity},{wrap}mean of {_seeds_text(seeds)}")
    order = [*panel.losses, *([None] if ref is not None else [])]  # configured order
    ax.legend(handles=[handles[key] for key in order], fontsize="small", handlelength=3.5)
    ax.grid(alpha=0.3)


def learning_curves(
    figure: Figure,
    curves: pd.DataFrame,
    batch_sizes: Mapping[str, int],
    png: str | Path,
    pdf: str | Path,
) -> None:
    """Write :func:`draw_learning_curves` as PNG and PDF."""
    fig = draw_learning_curves(figure, curves, batch_sizes)
    fig.savefig(png, dpi=150)
    fig.savefig(pdf)
    _pyplot().close(fig)


# ----------------------------------------------------------------------------------- sweeps


def sweep_table(sweep: Mapping, summary: pd.DataFrame) -> pd.DataFrame:
    """One row per (sweep point, loss): position and label of the first swept value, the
    series (the other swept values, and their positions in ``vary``), the paper's best test
    loss and the improvement over L2, each with its interval (from summary.csv); in the order
    of the sweep's losses and values."""
    paths = list(sweep["vary"])
    rows = []
    for point in sweep["points"]:
        values = point["values"]
        x = sweep["vary"][paths[0]].index(values[paths[0]])
        series = ", ".join(value_label(values[p]) for p in paths[1:])
        order = tuple(sweep["vary"][p].index(values[p]) for p in paths[1:])
        for _, row in summary[summary["experiment"] == point["experiment"]].iterrows():
            rows.append(
                {
                    "x": x,
                    "x_label": value_label(values[paths[0]]),
                    "series": series,
                    "order": order,
                    "loss": row["loss"],
                    "best": row["min_of_mean_curve"],
                    "best_low": row["min_of_mean_curve_ci_low"],
                    "best_high": row["min_of_mean_curve_ci_high"],
                    "baseline": row["baseline"] if isinstance(row["baseline"], str) else "",
                    "improvement": row["rel_improvement_of_min_of_mean_curve"],
                    "improvement_low": row["rel_improvement_of_min_of_mean_curve_ci_low"],
                    "improvement_high": row["rel_improvement_of_min_of_mean_curve_ci_high"],
                }
            )
    columns = ["x", "x_label", "series", "order", "loss", "best", "best_low", "best_high"]
    columns += ["baseline", "improvement", "improvement_low", "improvement_high"]
    table = pd.DataFrame(rows, columns=columns)
    losses = list(sweep.get("losses") or sorted(set(table["loss"])))
    rank = table["loss"].map(lambda loss: losses.index(loss) if loss in losses else len(losses))
    table = table.assign(rank=rank).sort_values(["rank", "loss", "order", "x"], kind="stable")
    return table.drop(columns="rank").reset_index(drop=True)


def draw_sweep(sweep: Mapping, summary: pd.DataFrame):
    """The matplotlib Figure of a sweep: left the paper's best test loss against the first
    swept value, one line per loss (and per value of the other swept keys) with its interval
    band; right, where an L2 to compare with exists, the relative improvement over it."""
    plt = _pyplot()
    from matplotlib.ticker import PercentFormatter

    table = sweep_table(sweep, summary)
    if table.empty:
        raise ValueError(f"sweep {sweep['name']!r}: no rows in the summary table")
    paths = list(sweep["vary"])
    losses = list(dict.fromkeys(table["loss"]))
    series = list(dict.fromkeys(table["series"]))
    improved = table[(table["loss"] != table["baseline"]) & table["improvement"].notna()]
    ncols = 2 if not improved.empty else 1
    fig, axes = plt.subplots(1, ncols, figsize=(6.0 * ncols, 4.4), squeeze=False)
    names = [value_label(v) for v in sweep["vary"][paths[0]]]
    ticks = [label.replace(", ", "\n") for label in names]

    def style(loss: str, name: str) -> dict:
        if len(series) > 1:
            color = f"C{series.index(name) % 10}"
        else:
            default = TYPE_COLORS.get(sweep["loss_types"][loss])
            color = default or PALETTE[losses.index(loss) % len(PALETTE)]
        label = ", ".join(part for part in (loss, name) if part)
        return {"color": color, "ls": LINE_STYLES[losses.index(loss) % 4], "label": label}

    def draw(ax, rows: pd.DataFrame, column: str) -> None:
        for (loss, name), line in rows.groupby(["loss", "series"], sort=False):
            kwargs = style(loss, name)
            ax.plot(line["x"], line[column], marker="o", lw=2, **kwargs)
            low, high = line[f"{column}_low"], line[f"{column}_high"]
            ax.fill_between(line["x"], low, high, color=kwargs["color"], alpha=0.15, lw=0)
            # the interval also as error bars: visible for a single swept value (an interval
            # may end at the estimate, a round-off below it: clipped at 0)
            yerr = [(line[column] - low).clip(lower=0), (high - line[column]).clip(lower=0)]
            ax.errorbar(
                line["x"],
                line[column],
                yerr=yerr,
                fmt="none",
                ecolor=kwargs["color"],
                elinewidth=1,
                capsize=3,
            )
        ax.set_xticks(range(len(names)), ticks, fontsize="small")
        ax.set_xlabel(paths[0])
        ax.grid(alpha=0.3)
        title = ", ".join(paths[1:]) if len(paths) > 1 else None
        ax.legend(fontsize="small", title=title, title_fontsize="small")

    ax = axes[0][0]
    shown = summary[summary["experiment"].isin({p["experiment"] for p in sweep["points"]})]
    metrics = set(shown["metric"]) if "metric" in shown else {"mse"}
    quantity = axis_quantity(metrics)
    quantity = quantity[0].lower() + quantity[1:]
    draw(ax, table, "best")
    ax.set_ylabel(f"Best {quantity}:\nlowest point of the mean curve")
    ax.set_title("The paper's best test loss")
    if ncols == 2:
        ax = axes[0][1]
        draw(ax, improved, "improvement")
        ax.axhline(0.0, color="black", lw=0.8)
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
        base = improved["baseline"].iloc[0]
        ax.set_ylabel(f"Improvement over {base}:\n1 − min(mean curve) / min(mean {base} curve)")
        ax.set_title(f"Relative improvement over {base}")
    fig.suptitle(sweep.get("title", sweep["name"]))
    fig.tight_layout()
    return fig


def sweep_plot(sweep: Mapping, summary: pd.DataFrame, png: str | Path, pdf: str | Path) -> None:
    """Write :func:`draw_sweep` as PNG and PDF."""
    fig = draw_sweep(sweep, summary)
    fig.savefig(png, dpi=150)
    fig.savefig(pdf)
    _pyplot().close(fig)
