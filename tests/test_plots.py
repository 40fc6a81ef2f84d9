"""Figure rules: bands that never cross 0 and none for one seed, the automatic y range, the
paper's layout of the learning-curve figure, and the sweep figure."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection

from biv.config.figures import TYPE_COLORS
from biv.report import plots
from biv.report.tables import summary_table

matplotlib.use("Agg")
T_975_1 = 12.706204736174698


def test_std_band_is_clipped_at_zero():
    values = np.array([[0.0, 1.0], [0.6, 1.2]])  # means 0.3, 1.1; std 0.6/sqrt(2), 0.2/sqrt(2)
    low, high = plots.band(values, "std")
    np.testing.assert_allclose(low, [0.0, 1.1 - 0.2 / np.sqrt(2)])  # 0.3 - 0.42 clipped
    np.testing.assert_allclose(high, [0.3 + 0.6 / np.sqrt(2), 1.1 + 0.2 / np.sqrt(2)])


def test_ci_band_is_clipped_at_zero_and_range_band_spans_the_seeds():
    values = np.array([[0.0, 1.0], [0.6, 1.2]])
    low, high = plots.band(values, "ci")
    np.testing.assert_allclose(low, [0.0, max(1.1 - T_975_1 * 0.1, 0.0)])
    np.testing.assert_allclose(high, [0.3 + T_975_1 * 0.3, 1.1 + T_975_1 * 0.1])
    low, high = plots.band(values, "range")
    np.testing.assert_allclose(low, [0.0, 1.0])
    np.testing.assert_allclose(high, [0.6, 1.2])


@pytest.mark.parametrize("kind", ["std", "ci", "range", "none"])
def test_no_band_for_one_seed_or_none(kind):
    assert plots.band(np.array([[0.5, 0.4]]), kind) is None
    assert plots.band(np.ones((3, 2)), "none") is None


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


def test_learning_curves_in_the_papers_layout(paper_figure, tmp_path):
    fig = plots.draw_learning_curves(paper_figure, CURVES, {"noisy": 256})
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
    legend = [t.get_text() for t in noisy.get_legend().get_texts()]
    assert legend == ["l2", "BIV (ours)", "cutoff", "No noise - L2"]  # configured order
    bands = [c for c in noisy.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 4
    assert min(p.vertices[:, 1].min() for b in bands for p in b.get_paths()) == 0.0
    assert not [c for c in single.collections if isinstance(c, PolyCollection)]
    plots.learning_curves(paper_figure, CURVES, {}, tmp_path / "f.png", tmp_path / "f.pdf")
    assert (tmp_path / "f.png").stat().st_size > 1000 and (tmp_path / "f.pdf").stat().st_size > 1000


def test_learning_curves_report_missing_curves(checked_figure):
    figure = checked_figure({"panels": [{"experiment": "noisy"}]}, {"noisy": {"iv": "iv"}})
    with pytest.raises(ValueError, match="^no learning curves of experiment 'noisy', loss 'iv'$"):
        plots.draw_learning_curves(figure, CURVES, {})


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


def test_sweep_with_two_keys_one_line_per_loss_and_value_of_the_second_key(tmp_path):
    vary = {"training.batch_size": [16, 32], "noise.components.0": MAPPINGS}
    names = ["s__a", "s__b", "s__c", "s__d"]
    points = [
        {"experiment": names[2 * i + j], "values": {"training.batch_size": b, KEY2: m}}
        for i, b in enumerate([16, 32])
        for j, m in enumerate(MAPPINGS)
    ]
    sweep = {"name": "s", "title": "Batch x muP", "experiment": "base", "losses": ["l2", "biv"]}
    sweep |= {"vary": vary, "points": points, "loss_types": {"l2": "mse", "biv": "biv"}}
    summary = sweep_summary([(n, 0.1 * (k + 1)) for k, n in enumerate(names)], ("l2", "biv"))
    table = plots.sweep_table(sweep, summary)
    biv = table[table["loss"] == "biv"].set_index(["x", "series"])
    assert biv.loc[(1, "mean=10000, var=1e+08"), "best"] == pytest.approx(0.5 - 0.4 + 0.02)
    assert biv.loc[(0, "mean=5000, var=2.5e+07"), "improvement"] == pytest.approx(
        1 - (0.4 + 0.02) / 0.52
    )
    fig = plots.draw_sweep(sweep, summary)
    left, right = fig.axes
    assert [t.get_text() for t in left.get_xticklabels()] == ["16", "32"]
    legend = [t.get_text() for t in left.get_legend().get_texts()]
    assert legend == [  # the sweep's order of losses and values
        "l2, mean=5000, var=2.5e+07",
        "l2, mean=10000, var=1e+08",
        "biv, mean=5000, var=2.5e+07",
        "biv, mean=10000, var=1e+08",
    ]
    assert left.get_legend().get_title().get_text() == "noise.components.0"
    assert left.get_ylabel() == (
        "Best clean test MSE (normalized units):\nlowest point of the mean curve"
    )
    assert right.get_ylabel().startswith("Improvement over l2")
    assert len(right.get_legend().get_texts()) == 2  # biv only, one per muP
    plots.sweep_plot(sweep, summary, tmp_path / "s.png", tmp_path / "s.pdf")
    assert (tmp_path / "s.png").stat().st_size > 1000


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
    fig = plots.draw_sweep(sweep, summary)
    (ax,) = fig.axes
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == ["type=biv\nepsilon=0.5", "type=biv_adaptive"]
    line = ax.get_lines()[0]  # then the error bar caps
    assert line.get_color() == TYPE_COLORS["biv"]


def test_sweep_without_rows_is_an_error():
    point = {"experiment": "x", "values": {"noise.p": 0.1}}
    sweep = {"name": "s", "vary": {"noise.p": [0.1]}, "points": [point]}
    with pytest.raises(ValueError, match="sweep 's': no rows"):
        plots.draw_sweep(sweep, sweep_summary([("other", 0.1)], ("l2",)))


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
    plots.sweep_plot(sweep, summary, tmp_path / "s.png", tmp_path / "s.pdf")
    assert (tmp_path / "s.png").stat().st_size > 1000


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
    left = plots.draw_sweep(sweep, summary).axes[0]
    lines = [line for line in left.get_lines() if not line.get_label().startswith("_")]
    colours = {line.get_label(): line.get_color() for line in lines}
    assert colours == {"ours": plots.TYPE_COLORS["biv"], "biv": plots.TYPE_COLORS["mse"]}
