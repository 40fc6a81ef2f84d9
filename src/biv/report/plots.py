"""Figures, drawn from the tables of :mod:`biv.report.figure_tables` (no statistic is computed
here) in one theme (:mod:`biv.report.theme`), each with one legend beside its panels, never over
them: learning curves in the paper's layout, each run's own best and final score per seed, and
sweeps (lines against the swept value; heatmaps for a sweep of two keys). Each is written as
PNG and PDF with the table it was drawn from as CSV beside it. matplotlib (and seaborn, for the
heatmaps) is imported only by the functions that draw."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from biv import atomic
from biv.config.figures import PALETTE, TYPE_COLORS, Figure, Panel
from biv.report.figure_tables import SEED_QUANTITIES
from biv.report.figure_text import (
    AUTO_YLIM_HIGH,
    AUTO_YLIM_LOW,
    AXIS_QUANTITY,
    axis_quantity,
)
from biv.report.theme import themed

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
#: Per-seed figure: the line joining one seed's runs.
SEED_LINE = "0.6"
SEED_LINE_LABEL = "one seed: its runs joined"


def curve_style(index: int) -> str | tuple:
    """Line style of the ``index``-th distinct curve drawn in a learning-curve figure."""
    return "-" if index == 0 else DASHES[(index - 1) % len(DASHES)]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_legend(fig, handles: Sequence, **kwargs):
    """One legend for all panels, to their right and outside them (the layout of the figure,
    ``constrained``, makes room for it); ``kwargs`` go to ``Figure.legend``."""
    return fig.legend(handles=list(handles), loc="outside right center", **kwargs)


@themed
def write(fig, table: pd.DataFrame, png: str | Path, pdf: str | Path, csv: str | Path) -> None:
    """Write ``fig`` as PNG and PDF (then close it) and the table it was drawn from as CSV."""
    fig.savefig(png, dpi=150)
    fig.savefig(pdf)
    _pyplot().close(fig)
    atomic.write_text(csv, table.to_csv(index=False))


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


def _seeds_text(counts: set[int]) -> str:
    low, high = min(counts), max(counts)
    return f"{low} seed{'s' * (high > 1)}" if low == high else f"{low}–{high} seeds"


# ------------------------------------------------------------------------ learning curves
# The paper's layout is hand-set matplotlib on the theme: per-line widths (emphasised losses
# thick, drawn first), a dash pattern of its own for each label, the reference in black, the y
# range zoomed onto the minima (auto_ylim), the bands the table's own edges (fill_between).
# seaborn's lineplot would estimate its own bands (it draws no given edges) and build its own
# legend from its size and style mappings; and this job, the demo's last, imports no seaborn.


def curve_styles(figure: Figure) -> dict[str, str | tuple]:
    """The line style of each label of the figure: in the order the curves are drawn (each
    panel's emphasised losses first, its reference last), the first solid and each next label
    its own dash pattern, so that a label reads the same in every panel and in the legend."""
    order = []
    for panel in figure.panels:
        order += [panel.labels[loss] for loss in _draw_order(panel)]
        order += [panel.reference.label] if panel.reference is not None else []
    return {label: curve_style(i) for i, label in enumerate(dict.fromkeys(order))}


def _draw_order(panel: Panel) -> list[str]:
    """The panel's losses, emphasised (thick) ones first: thin dashed lines drawn over thick
    ones hide little of them."""
    return sorted(panel.losses, key=lambda loss: loss not in panel.emphasis)


@themed
def draw_learning_curves(figure: Figure, table: pd.DataFrame, batch_sizes: Mapping[str, int]):
    """The matplotlib Figure of a learning-curve figure, from its table
    (:func:`biv.report.figure_tables.learning_curve_table`): one panel per experiment, the
    mean curve of each loss with its band (emphasised losses thick), the reference in black,
    and one legend to the right of the panels."""
    plt = _pyplot()
    count = len(figure.panels)
    fig, axes = plt.subplots(
        1, count, figsize=(5.6 * count + 2.4, 4.3), squeeze=False, layout="constrained"
    )
    styles, handles = curve_styles(figure), {}
    for index, (ax, panel) in enumerate(zip(axes[0], figure.panels, strict=True)):
        rows = table[table["panel"] == index]
        handles |= _draw_panel(ax, panel, rows, batch_sizes.get(panel.experiment), styles)
    # handles long enough for the longest dash pattern to show
    figure_legend(fig, handles.values(), handlelength=3.5)
    if figure.title:
        fig.suptitle(figure.title)
    return fig


def _draw_panel(ax, panel: Panel, rows: pd.DataFrame, batch: int | None, styles: dict) -> dict:
    """Draw one panel's curves; their legend handles in the configured order, keyed by what
    they look like (a label drawn alike in two panels is one legend entry)."""
    means, handles = {}, {}
    for loss in _draw_order(panel):
        thick = loss in panel.emphasis
        curve = rows[(rows["role"] == "loss") & (rows["loss"] == loss)]
        width = THICK if thick else THIN
        handles[loss] = _draw_curve(
            ax, curve, panel.colors[loss], width, styles[panel.labels[loss]], 0.22 if thick else 0.1
        )
        means[loss] = curve["mean"].to_numpy()
    ref = panel.reference
    if ref is not None:
        curve = rows[rows["role"] == "reference"]
        handles[None] = _draw_curve(ax, curve, ref.color, REFERENCE_WIDTH, styles[ref.label], 0.15)
        means[f"reference:{ref.loss}"] = curve["mean"].to_numpy()
    ax.set_ylim(*(auto_ylim(means, panel.emphasis) if panel.ylim == "auto" else panel.ylim))
    ax.set_xlim(left=0)
    ax.set_title(panel.title)
    ax.set_xlabel("Training steps" + (f" (batch size: {batch})" if batch else ""))
    quantity = axis_quantity(set(rows["metric"]))
    wrap = "\n" if len(quantity) > len(AXIS_QUANTITY) else " "  # fits the panel
    ax.set_ylabel(f"{quantity},{wrap}mean of {_seeds_text(set(rows['n_seeds']))}")
    order = [*panel.losses, *([None] if ref is not None else [])]  # configured order
    return {_look(handles[key]): handles[key] for key in order}


def _draw_curve(ax, curve: pd.DataFrame, color: str, width: float, style, alpha: float):
    """One mean curve (labelled as its table row says) and its band, where it has one."""
    (line,) = ax.plot(
        curve["step"],
        curve["mean"],
        color=color,
        lw=width,
        ls=style,
        label=curve["label"].iloc[0],
    )
    if (curve["band"] != "none").all():
        ax.fill_between(curve["step"], curve["low"], curve["high"], color=color, alpha=alpha, lw=0)
    return line


def _look(line) -> tuple:
    return line.get_label(), line.get_color(), line.get_linewidth(), str(line.get_linestyle())


def learning_curves(
    figure: Figure,
    table: pd.DataFrame,
    batch_sizes: Mapping[str, int],
    png: str | Path,
    pdf: str | Path,
    csv: str | Path,
) -> None:
    """Write :func:`draw_learning_curves` as PNG and PDF, and its table as CSV."""
    write(draw_learning_curves(figure, table, batch_sizes), table, png, pdf, csv)


# ---------------------------------------------------------------------- per-seed values


@themed
def draw_seed_values(figure: Figure, table: pd.DataFrame):
    """Each run's own best and final score, from its table
    (:func:`biv.report.figure_tables.seed_table`): one row of panels per panel of the
    learning-curve figure, one per quantity of SEED_QUANTITIES; a column of dots per drawn
    curve in its colour, each seed's dots joined by a grey line (paired: every loss of a seed
    trains on the same noise draw)."""
    plt = _pyplot()
    from matplotlib.lines import Line2D

    rows, widest = len(figure.panels), max(len(panel.losses) + 1 for panel in figure.panels)
    fig, axes = plt.subplots(
        rows,
        len(SEED_QUANTITIES),
        figsize=(len(SEED_QUANTITIES) * (0.9 * widest + 1.6) + 2.0, 3.6 * rows),
        squeeze=False,
        layout="constrained",
    )
    for index, panel in enumerate(figure.panels):
        panel_rows = table[table["panel"] == index]
        for ax, (quantity, meaning) in zip(axes[index], SEED_QUANTITIES.items(), strict=True):
            _draw_seeds(ax, panel, panel_rows[panel_rows["quantity"] == quantity])
            ax.set_title(f"{panel.title}\n{quantity.capitalize()}: {meaning}")
    seed = Line2D([], [], color=SEED_LINE, lw=THIN, marker="o", mfc="white", label=SEED_LINE_LABEL)
    figure_legend(fig, [seed])
    if figure.title:
        fig.suptitle(f"{figure.title}: each seed's runs")
    return fig


def _draw_seeds(ax, panel: Panel, rows: pd.DataFrame) -> None:
    """One panel of the per-seed figure: ``rows`` of one quantity, in the figure's order."""
    curves = list(dict.fromkeys(zip(rows["role"], rows["loss"], rows["label"], strict=True)))
    position = {curve[:2]: i for i, curve in enumerate(curves)}
    x = np.array([position[key] for key in zip(rows["role"], rows["loss"], strict=True)])
    for seed in sorted(set(rows["seed"])):
        mine = (rows["seed"] == seed).to_numpy()
        ax.plot(x[mine], rows["value"][mine], color=SEED_LINE, lw=THIN, zorder=1)
    for role, loss, _ in curves:
        mine = ((rows["role"] == role) & (rows["loss"] == loss)).to_numpy()
        color = panel.colors[loss] if role == "loss" else panel.reference.color
        ax.scatter(x[mine], rows["value"][mine], color=color, zorder=2, edgecolor="white")
    ax.set_xticks(range(len(curves)), [label for _, _, label in curves])
    ax.set_xlim(-0.5, len(curves) - 0.5)
    ax.set_ylabel(axis_quantity(set(rows["metric"])))


def seed_plot(
    figure: Figure, table: pd.DataFrame, png: str | Path, pdf: str | Path, csv: str | Path
) -> None:
    """Write :func:`draw_seed_values` as PNG and PDF, and its table as CSV."""
    write(draw_seed_values(figure, table), table, png, pdf, csv)


# ---------------------------------------------------------------------------------- sweeps


def _sweep_quantity(table: pd.DataFrame) -> str:
    quantity = axis_quantity(set(table["metric"]))
    return quantity[0].lower() + quantity[1:]


def _improved(table: pd.DataFrame) -> pd.DataFrame:
    """The rows with an improvement over a baseline other than themselves."""
    return table[(table["loss"] != table["baseline"]) & table["improvement"].notna()]


@themed
def draw_sweep(sweep: Mapping, table: pd.DataFrame):
    """The matplotlib Figure of a sweep, from its table
    (:func:`biv.report.figure_tables.sweep_table`): heatmaps for a sweep of two keys
    (:func:`draw_sweep_heatmaps`), else lines against the first swept value
    (:func:`draw_sweep_lines`)."""
    if len(sweep["vary"]) == 2:
        fig = draw_sweep_heatmaps(sweep, table)
    else:
        fig = draw_sweep_lines(sweep, table)
    fig.suptitle(sweep.get("title", sweep["name"]))
    return fig


@themed
def draw_sweep_lines(sweep: Mapping, table: pd.DataFrame):
    """Left, the paper's best test loss against the first swept value, one line per loss (and
    per value of the other swept keys) with its interval band; right, where an L2 to compare
    with exists, the relative improvement over it; one legend beside both."""
    plt = _pyplot()
    from matplotlib.ticker import PercentFormatter

    paths = list(sweep["vary"])
    improved = _improved(table)
    ncols = 2 if not improved.empty else 1
    fig, axes = plt.subplots(
        1, ncols, figsize=(6.0 * ncols + 2.6, 4.4), squeeze=False, layout="constrained"
    )
    names = list(dict.fromkeys(table.sort_values("x")["x_label"]))
    ticks = [label.replace(", ", "\n") for label in names]
    styles = _sweep_styles(sweep, table)
    drawn = [(table, "best"), (improved, "improvement")][:ncols]
    for ax, (rows, column) in zip(axes[0], drawn, strict=True):
        _draw_sweep_lines(ax, rows, column, styles)
        ax.set_xticks(range(len(names)), ticks, fontsize="small")
        ax.set_xlabel(paths[0])
    ax = axes[0][0]
    ax.set_ylabel(f"Best {_sweep_quantity(table)}:\nlowest point of the mean curve")
    ax.set_title("The paper's best test loss")
    if ncols == 2:
        ax = axes[0][1]
        ax.axhline(0.0, color="black", lw=0.8)
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
        base = improved["baseline"].iloc[0]
        ax.set_ylabel(f"Improvement over {base}:\n1 − min(mean curve) / min(mean {base} curve)")
        ax.set_title(f"Relative improvement over {base}")
    handles = [h for h in axes[0][0].get_lines() if not h.get_label().startswith("_")]
    figure_legend(fig, handles, title=", ".join(["loss", *paths[1:]]))
    return fig


def _sweep_styles(sweep: Mapping, table: pd.DataFrame) -> dict[tuple[str, str], dict]:
    """Colour, line style and label of each (loss, series) line: colour by series when there
    are several, else by loss type; line style by loss."""
    losses = list(dict.fromkeys(table["loss"]))
    series = list(dict.fromkeys(table["series"]))
    styles = {}
    for loss, name in dict.fromkeys(zip(table["loss"], table["series"], strict=True)):
        if len(series) > 1:
            color = f"C{series.index(name) % 10}"
        else:
            default = TYPE_COLORS.get(sweep["loss_types"][loss])
            color = default or PALETTE[losses.index(loss) % len(PALETTE)]
        label = ", ".join(part for part in (loss, name) if part)
        line = LINE_STYLES[losses.index(loss) % len(LINE_STYLES)]
        styles[loss, name] = {"color": color, "ls": line, "label": label}
    return styles


def _draw_sweep_lines(ax, rows: pd.DataFrame, column: str, styles: dict) -> None:
    """``column`` of ``rows`` against x, one line per (loss, series) with its interval."""
    for key, line in rows.groupby(["loss", "series"], sort=False):
        kwargs = styles[key]
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


#: Heatmaps: each cell's text, by column (value, then its interval in brackets).
CELL_FORMATS = {"best": "{:.3g}", "improvement": "{:.1%}"}


@themed
def draw_sweep_heatmaps(sweep: Mapping, table: pd.DataFrame):
    """A sweep of two keys as heatmaps, first key across, second down: the paper's best test
    loss of each loss (one colour scale for all), then each loss's relative improvement over
    L2 where there is one (diverging around 0); every cell annotated with its value and its
    interval."""
    plt = _pyplot()

    improved = _improved(table)
    panels = [("best", loss) for loss in dict.fromkeys(table["loss"])]
    panels += [("improvement", loss) for loss in dict.fromkeys(improved["loss"])]
    columns = table["x"].nunique()
    width, height = 1.15 * columns + 2.2, 0.75 * table["series_index"].nunique() + 1.8
    fig, axes = plt.subplots(
        1, len(panels), figsize=(width * len(panels), height), squeeze=False, layout="constrained"
    )
    best_range = (table["best"].min(), table["best"].max())
    reach = improved["improvement"].abs().max()
    quantity, paths = _sweep_quantity(table), list(sweep["vary"])
    for ax, (column, loss) in zip(axes[0], panels, strict=True):
        rows = table[table["loss"] == loss]
        if column == "best":
            scale = {"cmap": "rocket_r", "vmin": best_range[0], "vmax": best_range[1]}
            ax.set_title(f"{loss}: best {quantity}")
            label = "Best: lowest point of the mean curve"
        else:
            # symmetric limits rather than seaborn's center=0 (which calls a colour-map method
            # that matplotlib 3.11 deprecates): the same colours
            scale = {"cmap": "vlag", "vmin": -reach, "vmax": reach}
            base = rows["baseline"].iloc[0]
            ax.set_title(f"{loss}: improvement over {base}")
            label = f"1 − min(mean curve) / min(mean {base} curve)"
        _heatmap(ax, rows, column, scale, label)
        ax.set_xlabel(paths[0])
        ax.set_ylabel(paths[1])
    return fig


def _heatmap(ax, rows: pd.DataFrame, column: str, scale: dict, label: str) -> None:
    """``column`` of one loss's rows as a heatmap (x across, series down), each cell
    annotated with its value and interval."""
    import seaborn as sns

    grid = rows.pivot(index="series_index", columns="x", values=column).sort_index()
    grid = grid.sort_index(axis=1)
    text = rows.assign(text=[_cell_text(row, column) for _, row in rows.iterrows()])
    text = text.pivot(index="series_index", columns="x", values="text").loc[grid.index]
    names = rows.drop_duplicates("x").set_index("x")["x_label"]
    series = rows.drop_duplicates("series_index").set_index("series_index")["series"]
    sns.heatmap(
        grid,
        annot=text[grid.columns].fillna("").to_numpy(),
        fmt="",
        annot_kws={"fontsize": "small"},
        xticklabels=[str(names[x]).replace(", ", "\n") for x in grid.columns],
        yticklabels=[str(series[s]).replace(", ", "\n") for s in grid.index],
        cbar_kws={"label": label},
        ax=ax,
        **scale,
    )
    if column == "improvement":
        from matplotlib.ticker import PercentFormatter

        ax.collections[0].colorbar.ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    ax.tick_params(axis="y", rotation=0)


def _cell_text(row: pd.Series, column: str) -> str:
    """A heatmap cell's text: the value, and below it its interval where it has one."""
    form = CELL_FORMATS[column]
    low, high = row[f"{column}_low"], row[f"{column}_high"]
    text = form.format(row[column])
    if np.isfinite(low) and np.isfinite(high):
        text += f"\n[{form.format(low)}, {form.format(high)}]"
    return text


def sweep_plot(
    sweep: Mapping, table: pd.DataFrame, png: str | Path, pdf: str | Path, csv: str | Path
) -> None:
    """Write :func:`draw_sweep` as PNG and PDF, and its table as CSV."""
    write(draw_sweep(sweep, table), table, png, pdf, csv)


# ------------------------------------------------------------------------ noise variances
#: Noise-variance figure: the colour and line style of each mark, in turn.
MARK_STYLES = (("black", "--"), ("#2ca02c", ":"), ("#9467bd", "-."), ("#8c564b", (0, (6, 2))))


@themed
def draw_noise_variances(title: str, table: pd.DataFrame, marks: Mapping[str, float]):
    """The distribution of the drawn label-noise variances from its table
    (:func:`biv.report.figure_tables.noise_variance_table`): the fraction of training labels
    at or below each σ² (log axis), one grey line per seed; ``marks`` (label -> σ², e.g.
    ``{"μP (mean σ²) = 4": 4.0, "cutoff threshold C = 2": 2.0}``) as labelled vertical lines;
    one legend beside the panel."""
    plt = _pyplot()
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(8.0, 4.3), layout="constrained")
    for _, seed in table.groupby("seed"):
        ax.plot(
            seed["variance"], seed["fraction"], color=SEED_LINE, lw=THIN, drawstyle="steps-post"
        )
    ax.set_xscale("log")  # σ² = 0 (a constant component's) lies off the axis, to the left
    handles = [Line2D([], [], color=SEED_LINE, lw=THIN, label="one seed's draw")]
    for (label, value), (color, style) in zip(marks.items(), itertools.cycle(MARK_STYLES)):
        handles.append(ax.axvline(value, color=color, ls=style, lw=REFERENCE_WIDTH, label=label))
    ax.set_xlabel("Label-noise variance σ² (label units squared)")
    ax.set_ylabel("Fraction of training labels\nwith a variance at or below it")
    ax.set_ylim(0.0, 1.0)
    ax.set_title(title)
    figure_legend(fig, handles, handlelength=3.5)
    return fig


def noise_variance_plot(
    title: str,
    table: pd.DataFrame,
    marks: Mapping[str, float],
    png: str | Path,
    pdf: str | Path,
    csv: str | Path,
) -> None:
    """Write :func:`draw_noise_variances` as PNG and PDF, and its table as CSV."""
    write(draw_noise_variances(title, table, marks), table, png, pdf, csv)
