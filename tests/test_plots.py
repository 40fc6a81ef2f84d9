"""Figures: bands that never cross 0 and none for one seed, the automatic y range, the paper's
layout of the learning-curve figure, the per-seed figure, the sweep figures (lines, and heatmaps
for two swept keys), each drawn from its table and written with it as CSV, in one theme, with
no legend over a panel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_rgb

from biv.config.figures import TYPE_COLORS
from biv.report import figure_tables, plots, theme
from biv.report.statistics import band
from biv.report.tables import summary_table

matplotlib.use("Agg")
T_975_1 = 12.706204736174698


def test_std_band_is_clipped_at_zero():
    values = np.array([[0.0, 1.0], [0.6, 1.2]])  # means 0.3, 1.1; std 0.6/sqrt(2), 0.2/sqrt(2)
    low, high = band(values, "std")
    np.testing.assert_allclose(low, [0.0, 1.1 - 0.2 / np.sqrt(2)])  # 0.3 - 0.42 clipped
    np.testing.assert_allclose(high, [0.3 + 0.6 / np.sqrt(2), 1.1 + 0.2 / np.sqrt(2)])


def test_ci_band_is_clipped_at_zero_and_range_band_spans_the_seeds():
    values = np.array([[0.0, 1.0], [0.6, 1.2]])
    low, high = band(values, "ci")
    np.testing.assert_allclose(low, [0.0, max(1.1 - T_975_1 * 0.1, 0.0)])
    np.testing.assert_allclose(high, [0.3 + T_975_1 * 0.3, 1.1 + T_975_1 * 0.1])
    low, high = band(values, "range")
    np.testing.assert_allclose(low, [0.0, 1.0])
    np.testing.assert_allclose(high, [0.6, 1.2])


@pytest.mark.parametrize("kind", ["std", "ci", "range", "none"])
def test_no_band_for_one_seed_or_none(kind):
    assert band(np.array([[0.5, 0.4]]), kind) is None
    assert band(np.ones((3, 2)), "none") is None


def test_auto_ylim_spans_lowest_minimum_to_above_the_emphasised_minima():
    curves = {
        "l2": np.array([1.0, 0.2, 0.25]),  # first steps (1.0) never set the range
        "biv": np.array([1.1, 0.15, 0.16]),
        "cutoff": np.array([1.2, 0.3, 0.35]),
        "reference": np.array([0.9, 0.05, np.nan]),
    }
    assert plots.auto_ylim(curves, ["l2", "biv"]) == pytest.approx((0.8 * 0.05, 1.6 * 0.2))
    # nothing emphasised: the highest minimum of all curves
    assert plots.auto_ylim(curves, []) == pytest.approx((0.8 * 0.05, 1.6 * 0.3))
    assert plots.auto_ylim({"l2": np.array([np.inf, 0.5])}, ["l2"]) == pytest.approx((0.4, 0.8))
    # all minima 0: the whole range of the curves
    assert plots.auto_ylim({"a": np.array([2.0, 0.0])}, ["a"]) == (0.0, 2.0)


def long_curves(spec: dict) -> pd.DataFrame:
    """{(experiment, loss): {seed: values at steps 10, 20, ...}} as a long curve table."""
    return pd.DataFrame(
        [
            {"experiment": exp, "loss": loss, "seed": seed, "step": 10 * (i + 1), "value": v}
            for (exp, loss), seeds in spec.items()
            for seed, values in seeds.items()
            for i, v in enumerate(values)
        ]
    )


CURVES = long_curves(
    {
        ("noisy", "l2"): {1: [1.0, 0.30, 0.35], 2: [1.2, 0.50, 0.45]},  # min of mean 0.4
        ("noisy", "biv"): {1: [1.0, 0.20, 0.30], 2: [1.0, 0.30, 0.30]},  # 0.25
        ("noisy", "cutoff"): {1: [1.0, 0.02, 0.40], 2: [1.0, 0.60, 0.40]},  # 0.31, band < 0
        ("clean", "l2"): {1: [0.8, 0.12, 0.10], 2: [0.8, 0.12, 0.10]},  # 0.1
        ("single", "l2"): {1: [1.0, 0.5, 0.6]},
    }
)
TYPES = {"l2": "mse", "biv": "biv", "cutoff": "cutoff"}


@pytest.fixture
def paper_figure(checked_figure):
    """Two panels: three losses with a reference line, and a single loss with its own ylim."""
    return checked_figure(
        {
            "title": "Figure",
            "panels": [
                {
                    "experiment": "noisy",
                    "losses": ["l2", "biv", "cutoff"],
                    "labels": {"biv": "BIV (ours)"},
                    "reference": {"experiment": "clean", "loss": "l2", "label": "No noise - L2"},
                },
                {"experiment": "single", "losses": ["l2"], "ylim": [0.1, 0.9]},
            ],
        },
        {"noisy": TYPES, "clean": TYPES, "single": TYPES},
    )


def legend_overlaps(fig) -> list[str]:
    """The legends (of the figure or of a panel) whose drawn box overlaps a panel's data area
    (any axes: colour bars included) or the figure's title, after the figure is drawn in the
    theme."""
    with matplotlib.rc_context(theme.THEME):
        fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
    areas = {f"panel {ax.get_title()!r}": ax for ax in fig.axes}
    if fig._suptitle is not None:
        areas["the figure's title"] = fig._suptitle
    found = []
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for name, area in areas.items():
            if box.overlaps(area.get_window_extent(renderer)):
                found.append(f"legend {legend.get_title().get_text()!r} over {name}")
    return found


def assert_written(path, table: pd.DataFrame) -> None:
    """The CSV file at ``path`` holds ``table``: its text columns as text, its numbers to the
    last bit."""
    text = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
    numbers = {c: [""] for c in table.columns if c not in text}
    written = pd.read_csv(
        path, dtype=dict.fromkeys(text, str), keep_default_na=False, na_values=numbers
    )
    pd.testing.assert_frame_equal(written, table, check_dtype=False, check_exact=True)


def test_learning_curves_in_the_papers_layout(paper_figure, tmp_path):
    table = figure_tables.learning_curve_table(paper_figure, CURVES)
    fig = plots.draw_learning_curves(paper_figure, table, {"noisy": 256})
    noisy, single = fig.axes
    assert noisy.get_ylim() == pytest.approx((0.8 * 0.1, 1.6 * 0.4))
    assert single.get_ylim() == (0.1, 0.9)
    assert noisy.get_xlabel() == "Training steps (batch size: 256)"
    assert single.get_xlabel() == "Training steps"
    assert noisy.get_ylabel() == "Clean test MSE (normalized units), mean of 2 seeds"
    assert single.get_ylabel() == "Clean test MSE (normalized units), mean of 1 seed"
    lines = {line.get_label(): line for line in noisy.get_lines()}
    assert set(lines) == {"l2", "BIV (ours)", "cutoff", "No noise - L2"}
    assert lines["l2"].get_color() == "#1f77b4" and lines["BIV (ours)"].get_color() == "#d62728"
    assert lines["No noise - L2"].get_color() == "black"
    assert lines["l2"].get_linewidth() == lines["BIV (ours)"].get_linewidth() == plots.THICK
    assert lines["cutoff"].get_linewidth() == plots.THIN
    np.testing.assert_allclose(lines["l2"].get_ydata(), [1.1, 0.4, 0.4])
    # thick lines drawn first; each line after the first in its own dash pattern
    drawn = [line.get_label() for line in noisy.get_lines()]
    assert drawn == ["l2", "BIV (ours)", "cutoff", "No noise - L2"]
    assert lines["l2"].get_linestyle() == "-"
    assert [lines[label].get_linestyle() for label in drawn] == ["-", "--", "--", "--"]
    styles = [plots.curve_style(i) for i in range(1 + len(plots.DASHES))]
    assert styles[0] == "-" and len(set(styles)) == len(styles)  # all distinct, none solid again
    # one legend beside the panels, in the configured order; l2 of the second panel, drawn
    # alike, is the same entry
    assert noisy.get_legend() is None and single.get_legend() is None
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        "l2",
        "BIV (ours)",
        "cutoff",
        "No noise - L2",
    ]
    assert legend_overlaps(fig) == []
    bands = [c for c in noisy.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 4
    assert min(p.vertices[:, 1].min() for b in bands for p in b.get_paths()) == 0.0
    assert not [c for c in single.collections if isinstance(c, PolyCollection)]
    files = [tmp_path / f"f.{ext}" for ext in ("png", "pdf", "csv")]
    plots.learning_curves(paper_figure, table, {}, *files)
    assert files[0].stat().st_size > 1000 and files[1].stat().st_size > 1000
    assert_written(files[2], table)


def test_no_legend_over_a_panel_or_the_title_of_a_one_panel_figure(checked_figure):
    """The demo's layout: one panel under a title wider than it."""
    figure = checked_figure(
        {
            "title": "Synthetic regression, continuous spread of label-noise variance",
            "panels": [{"experiment": "noisy", "reference": {"experiment": "clean", "loss": "l2"}}],
        },
        {"noisy": TYPES, "clean": TYPES},
    )
    table = figure_tables.learning_curve_table(figure, CURVES)
    assert legend_overlaps(plots.draw_learning_curves(figure, table, {})) == []
    seeds = figure_tables.seed_table(figure, seed_scores_of(CURVES))
    assert legend_overlaps(plots.draw_seed_values(figure, seeds)) == []


def test_learning_curve_bands_are_the_tables_edges(paper_figure):
    """The bands drawn are the table's low and high columns, which are the statistics of the
    curves: each band kind of statistics.band, none for a single seed."""
    table = figure_tables.learning_curve_table(paper_figure, CURVES)
    cutoff = table[(table["loss"] == "cutoff")]
    low, high = band(np.array([[1.0, 0.02, 0.40], [1.0, 0.60, 0.40]]), "std")
    np.testing.assert_allclose(cutoff["low"], low)
    np.testing.assert_allclose(cutoff["high"], high)
    assert set(cutoff["band"]) == {"std"} and set(cutoff["n_seeds"]) == {2}
    single = table[table["panel"] == 1]
    assert set(single["band"]) == {"none"} and single[["low", "high"]].isna().all().all()
    fig = plots.draw_learning_curves(paper_figure, table, {})
    colour = to_rgb(paper_figure.panels[0].colors["cutoff"])
    (cutoff_band,) = [
        c
        for c in fig.axes[0].collections
        if isinstance(c, PolyCollection) and tuple(c.get_facecolor()[0][:3]) == colour
    ]
    edges = cutoff_band.get_paths()[0].vertices[:, 1]
    assert set(np.round(edges, 12)) <= set(np.round([*low, *high], 12))


def test_learning_curve_table_agrees_with_the_summary_table(paper_figure):
    table = figure_tables.learning_curve_table(paper_figure, CURVES)
    experiments = {e: {"baseline": None, "sweep": None} for e in set(CURVES["experiment"])}
    summary = summary_table(CURVES, experiments).set_index(["experiment", "loss"])
    for (experiment, loss), curve in table.groupby(["experiment", "loss"]):
        row = summary.loc[(experiment, loss)]
        assert curve["mean"].min() == pytest.approx(row["min_of_mean_curve"], rel=1e-12)
        assert curve["mean"].iloc[-1] == pytest.approx(row["final_of_mean_curve"], rel=1e-12)
        assert set(curve["n_seeds"]) == {row["n_seeds"]}


def test_learning_curves_report_missing_curves(checked_figure):
    figure = checked_figure({"panels": [{"experiment": "noisy"}]}, {"noisy": {"iv": "iv"}})
    with pytest.raises(ValueError, match="^no learning curves of experiment 'noisy', loss 'iv'$"):
        figure_tables.learning_curve_table(figure, CURVES)


def seed_scores_of(curves: pd.DataFrame) -> pd.DataFrame:
    """Each run's own best and final value, as its summary.json would hold them."""
    runs = curves.groupby(["experiment", "loss", "seed"])["value"]
    frame = runs.agg(best="min", final="last").reset_index()
    return frame.assign(metric="mse")


def test_seed_figure_joins_each_seeds_runs_and_draws_the_table(paper_figure, tmp_path):
    table = figure_tables.seed_table(paper_figure, seed_scores_of(CURVES))
    noisy = table[(table["panel"] == 0) & (table["quantity"] == "best")]
    assert (
        list(noisy["label"])
        == ["l2", "l2", "BIV (ours)", "BIV (ours)", "cutoff", "cutoff"] + ["No noise - L2"] * 2
    )
    np.testing.assert_allclose(noisy["value"], [0.30, 0.45, 0.20, 0.30, 0.02, 0.40, 0.10, 0.10])
    fig = plots.draw_seed_values(paper_figure, table)
    best, final, single_best, _ = fig.axes
    assert [t.get_text() for t in best.get_xticklabels()] == [
        "l2",
        "BIV (ours)",
        "cutoff",
        "No noise - L2",
    ]
    seeds = [line for line in best.get_lines() if line.get_color() == plots.SEED_LINE]
    assert len(seeds) == 2  # one line per seed, through every loss
    np.testing.assert_allclose(seeds[1].get_ydata(), [0.45, 0.30, 0.40, 0.10])
    np.testing.assert_allclose(final.get_lines()[0].get_ydata(), [0.35, 0.30, 0.40, 0.10])
    assert "Best" in best.get_title() and "Final" in final.get_title()
    assert best.get_ylabel() == "Clean test MSE (normalized units)"
    assert [t.get_text() for t in single_best.get_xticklabels()] == ["l2"]
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [plots.SEED_LINE_LABEL]
    assert legend_overlaps(fig) == []
    files = [tmp_path / f"s.{ext}" for ext in ("png", "pdf", "csv")]
    plots.seed_plot(paper_figure, table, *files)
    assert files[0].stat().st_size > 1000
    assert_written(files[2], table)


def test_seed_scores_read_the_runs_summaries(tmp_path):
    clean = {"test_labels": "clean", "best_test_mse": 0.1, "final_test_mse": 0.2}
    noisy = {"test_labels": "noisy", "best_clean_mse_est": 0.3, "final_clean_mse_est": 0.4}
    files = []
    for name, summary in (("a", clean), ("b", noisy)):
        files.append(tmp_path / f"{name}.json")
        files[-1].write_text(json.dumps(summary))
    scores = figure_tables.seed_scores(files, [("e", "l2", 1), ("f", "l2", "2")])
    assert scores.to_dict("records") == [
        {"experiment": "e", "loss": "l2", "seed": 1, "metric": "mse", "best": 0.1, "final": 0.2},
        {"experiment": "f", "loss": "l2", "seed": 2, "metric": "clean_mse_est", "best": 0.3}
        | {"final": 0.4},
    ]


MAPPINGS = [{"mean": 5000, "var": 2.5e7}, {"mean": 10000, "var": 1.0e8}]
KEY2 = "noise.components.0"


def sweep_summary(points: list[tuple[str, float]], losses: tuple[str, ...]) -> pd.DataFrame:
    """A summary table of sweep points whose biv curves sit ``level`` below l2's."""
    spec = {}
    experiments = {}
    for name, level in points:
        experiments[name] = {"baseline": "l2" if "l2" in losses else None, "sweep": "s"}
        for loss in losses:
            shift = level if loss == "biv" else 0.0
            spec[(name, loss)] = {seed: [1.0, 0.5 - shift + 0.01 * seed, 0.6] for seed in (1, 2, 3)}
    return summary_table(long_curves(spec), experiments)


def grid_sweep() -> tuple[dict, pd.DataFrame]:
    """A sweep of batch size x muP (two values each) with l2 and biv, and its summary table:
    biv's curves sit 0.1, 0.2, 0.3, 0.4 below l2's at the points in grid order."""
    vary = {"training.batch_size": [16, 32], KEY2: MAPPINGS}
    names = ["s__a", "s__b", "s__c", "s__d"]
    points = [
        {"experiment": names[2 * i + j], "values": {"training.batch_size": b, KEY2: m}}
        for i, b in enumerate([16, 32])
        for j, m in enumerate(MAPPINGS)
    ]
    sweep = {"name": "s", "title": "Batch x muP", "experiment": "base", "losses": ["l2", "biv"]}
    sweep |= {"vary": vary, "points": points, "loss_types": {"l2": "mse", "biv": "biv"}}
    summary = sweep_summary([(n, 0.1 * (k + 1)) for k, n in enumerate(names)], ("l2", "biv"))
    return sweep, summary


def test_sweep_table_of_two_keys_is_the_summarys_numbers():
    sweep, summary = grid_sweep()
    table = figure_tables.sweep_table(sweep, summary)
    biv = table[table["loss"] == "biv"].set_index(["x", "series"])
    assert biv.loc[(1, "mean=10000, var=1e+08"), "best"] == pytest.approx(0.5 - 0.4 + 0.02)
    assert biv.loc[(0, "mean=5000, var=2.5e+07"), "improvement"] == pytest.approx(
        1 - (0.4 + 0.02) / 0.52
    )
    assert list(table["series_index"]) == [0, 0, 1, 1, 0, 0, 1, 1]
    rows = summary.set_index(["experiment", "loss"])
    for row, point in zip(
        table[table["loss"] == "biv"].itertuples(),
        sorted(
            sweep["points"],
            key=lambda p: (p["values"][KEY2]["mean"], p["values"]["training.batch_size"]),
        ),
        strict=True,
    ):
        source = rows.loc[(point["experiment"], "biv")]
        assert row.best == source["min_of_mean_curve"]
        assert (row.best_low, row.best_high) == (
            source["min_of_mean_curve_ci_low"],
            source["min_of_mean_curve_ci_high"],
        )
        assert row.improvement == source["rel_improvement_of_min_of_mean_curve"]
        assert row.improvement_low == source["rel_improvement_of_min_of_mean_curve_ci_low"]


def test_sweep_of_two_keys_is_drawn_as_annotated_heatmaps(tmp_path):
    sweep, summary = grid_sweep()
    table = figure_tables.sweep_table(sweep, summary)
    fig = plots.draw_sweep(sweep, table)
    panels = [ax for ax in fig.axes if ax.get_title()]  # the others: colour bars
    assert [ax.get_title() for ax in panels] == [
        "l2: best clean test MSE (normalized units)",
        "biv: best clean test MSE (normalized units)",
        "biv: improvement over l2",
    ]
    improvement = panels[2]
    assert [t.get_text() for t in improvement.get_xticklabels()] == ["16", "32"]
    assert [t.get_text() for t in improvement.get_yticklabels()] == [
        "mean=5000\nvar=2.5e+07",
        "mean=10000\nvar=1e+08",
    ]
    assert improvement.get_xlabel() == "training.batch_size" and improvement.get_ylabel() == KEY2
    # the cells: row = second key, column = first key; value and interval as the table has them
    mesh = improvement.collections[0].get_array().reshape(2, 2)
    biv = table[table["loss"] == "biv"]
    expected = biv.pivot(index="series_index", columns="x", values="improvement").to_numpy()
    np.testing.assert_allclose(mesh, expected)
    texts = [t.get_text() for t in improvement.texts]
    first = biv[(biv["x"] == 0) & (biv["series_index"] == 0)].iloc[0]
    assert texts[0] == (
        f"{first.improvement:.1%}\n[{first.improvement_low:.1%}, {first.improvement_high:.1%}]"
    )
    assert texts[0].startswith("19.2%")  # 1 - 0.42 / 0.52
    best_l2 = panels[0].collections[0]
    assert best_l2.get_clim() == pytest.approx((table["best"].min(), table["best"].max()))
    lim = improvement.collections[0].get_clim()
    assert lim[0] == pytest.approx(-lim[1])  # diverging around 0
    assert fig.legends == [] and legend_overlaps(fig) == []
    files = [tmp_path / f"s.{ext}" for ext in ("png", "pdf", "csv")]
    plots.sweep_plot(sweep, table, *files)
    assert files[0].stat().st_size > 1000
    assert_written(files[2], table)


def test_sweep_lines_one_per_loss_and_value_of_the_other_keys():
    sweep, summary = grid_sweep()
    fig = plots.draw_sweep_lines(sweep, figure_tables.sweep_table(sweep, summary))
    left, right = fig.axes
    assert [t.get_text() for t in left.get_xticklabels()] == ["16", "32"]
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [  # the sweep's order of losses, values
        "l2, mean=5000, var=2.5e+07",
        "l2, mean=10000, var=1e+08",
        "biv, mean=5000, var=2.5e+07",
        "biv, mean=10000, var=1e+08",
    ]
    assert legend.get_title().get_text() == "loss, noise.components.0"
    assert left.get_ylabel() == (
        "Best clean test MSE (normalized units):\nlowest point of the mean curve"
    )
    assert right.get_ylabel().startswith("Improvement over l2")
    assert len([x for x in right.get_lines() if not x.get_label().startswith("_")]) == 2
    assert left.get_legend() is None and right.get_legend() is None
    assert legend_overlaps(fig) == []


def test_sweep_of_mappings_on_the_x_axis_and_without_l2_has_one_panel():
    sweep = {"name": "s", "title": "Adaptive", "experiment": "base", "losses": ["biv"]}
    sweep |= {
        "loss_types": {"biv": "biv"},
        "vary": {"losses.biv": [{"type": "biv", "epsilon": 0.5}, {"type": "biv_adaptive"}]},
        "points": [
            {"experiment": "s__v0", "values": {"losses.biv": {"type": "biv", "epsilon": 0.5}}},
            {"experiment": "s__v1", "values": {"losses.biv": {"type": "biv_adaptive"}}},
        ],
    }
    summary = sweep_summary([("s__v0", 0.1), ("s__v1", 0.2)], ("biv",))
    fig = plots.draw_sweep(sweep, figure_tables.sweep_table(sweep, summary))
    (ax,) = fig.axes
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == ["type=biv\nepsilon=0.5", "type=biv_adaptive"]
    line = ax.get_lines()[0]  # then the error bar caps
    assert line.get_color() == TYPE_COLORS["biv"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["biv"]
    assert legend_overlaps(fig) == []


def test_sweep_without_rows_is_an_error():
    point = {"experiment": "x", "values": {"noise.p": 0.1}}
    sweep = {"name": "s", "vary": {"noise.p": [0.1]}, "points": [point]}
    with pytest.raises(ValueError, match="sweep 's': no rows"):
        figure_tables.sweep_table(sweep, sweep_summary([("other", 0.1)], ("l2",)))


def test_sweep_interval_ending_a_round_off_below_its_estimate_draws(tmp_path):
    sweep = {"name": "s", "title": "eps", "experiment": "base", "losses": ["biv"]}
    sweep |= {
        "loss_types": {"biv": "biv"},
        "vary": {"losses.biv.epsilon": [0.1, 1]},
        "points": [
            {"experiment": "s__a", "values": {"losses.biv.epsilon": 0.1}},
            {"experiment": "s__b", "values": {"losses.biv.epsilon": 1}},
        ],
    }
    summary = sweep_summary([("s__a", 0.1), ("s__b", 0.2)], ("biv",))
    summary["min_of_mean_curve_ci_high"] = summary["min_of_mean_curve"] - 5.6e-17
    files = [tmp_path / f"s.{ext}" for ext in ("png", "pdf", "csv")]
    plots.sweep_plot(sweep, figure_tables.sweep_table(sweep, summary), *files)
    assert files[0].stat().st_size > 1000


def test_sweep_colours_come_from_the_loss_types_not_the_names():
    """A loss named 'ours' of type biv is drawn in BIV's colour, one named 'biv' of type mse in
    L2's (types are known to the plan, and travel with the sweep)."""
    sweep = {"name": "s", "title": "t", "experiment": "base", "losses": ["ours", "biv"]}
    sweep |= {
        "vary": {"training.batch_size": [16]},
        "points": [{"experiment": "s__a", "values": {"training.batch_size": 16}}],
        "loss_types": {"ours": "biv", "biv": "mse"},
    }
    summary = sweep_summary([("s__a", 0.1)], ("ours", "biv"))
    left = plots.draw_sweep(sweep, figure_tables.sweep_table(sweep, summary)).axes[0]
    lines = [line for line in left.get_lines() if not line.get_label().startswith("_")]
    colours = {line.get_label(): line.get_color() for line in lines}
    assert colours == {"ours": plots.TYPE_COLORS["biv"], "biv": plots.TYPE_COLORS["mse"]}


def test_learning_curves_and_seeds_are_drawn_without_seaborn_or_scipy(paper_figure, tmp_path):
    """The learning-curve job ends the demo: importing seaborn (and scipy.stats with it) there
    would add half a second to it."""
    table = figure_tables.learning_curve_table(paper_figure, CURVES)
    seeds = figure_tables.seed_table(paper_figure, seed_scores_of(CURVES))
    (tmp_path / "figure.json").write_text(json.dumps(paper_figure.to_dict()))
    table.to_pickle(tmp_path / "curves.pkl")
    seeds.to_pickle(tmp_path / "seeds.pkl")
    code = """
import json, sys
import pandas as pd
from biv.config.figures import Figure
from biv.report import plots
figure = Figure.from_dict(json.loads(open("figure.json").read()))
plots.learning_curves(figure, pd.read_pickle("curves.pkl"), {}, "c.png", "c.pdf", "c.csv")
plots.seed_plot(figure, pd.read_pickle("seeds.pkl"), "s.png", "s.pdf", "s.csv")
print(sorted(m for m in ("seaborn", "scipy") if m in sys.modules))
"""
    src = str(Path(plots.__file__).parents[2])  # this checkout's package, not an installed one
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_noise_variance_figure_draws_the_quantiles_and_labelled_marks(tmp_path):
    """Ready for the noise-draw files: each seed's σ² as quantiles, μP and cutoff thresholds
    marked and named in the legend beside the panel."""
    rng = np.random.default_rng(0)
    draws = {2: rng.exponential(2.0, 500), 1: rng.uniform(0.0, 12.0, 500)}
    table = figure_tables.noise_variance_table(draws, points=11)
    assert list(table["seed"]) == [1] * 11 + [2] * 11
    one = table[table["seed"] == 1]
    assert one["variance"].iloc[0] == draws[1].min() and one["variance"].iloc[-1] == draws[1].max()
    assert one["variance"].iloc[5] == pytest.approx(np.median(draws[1]))
    marks = {"μP (mean σ²) = 4": 4.0, "cutoff threshold C = 2": 2.0}
    fig = plots.draw_noise_variances("Synthetic, mixture", table, marks)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log" and ax.get_ylim() == (0.0, 1.0)
    seeds = [line for line in ax.get_lines() if line.get_color() == plots.SEED_LINE]
    np.testing.assert_allclose(seeds[0].get_xdata(), one["variance"])
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["one seed's draw", *marks]
    assert legend_overlaps(fig) == []
    files = [tmp_path / f"n.{ext}" for ext in ("png", "pdf", "csv")]
    plots.noise_variance_plot("Synthetic, mixture", table, marks, *files)
    assert_written(files[2], table)


def test_the_theme_is_seaborns():
    """THEME, written out so that the learning-curve job need not import seaborn, is
    seaborn's theme (python -m biv.report.theme prints it anew); every figure is drawn in it."""
    assert theme.seaborn_theme() == theme.THEME
    sweep, summary = grid_sweep()
    table = figure_tables.sweep_table(sweep, summary)
    for fig in (plots.draw_sweep(sweep, table), plots.draw_sweep_lines(sweep, table)):
        assert all(ax.get_facecolor()[:3] == (1.0, 1.0, 1.0) for ax in fig.axes)
        assert fig.axes[0].title.get_fontsize() == theme.THEME["axes.titlesize"]
