"""The words of the figures: value labels, the improvement's reference in sweep captions, and
the report captions of checked figures."""

from __future__ import annotations

import subprocess
import sys

import pytest

from biv.config.sweeps import improvement_reference
from biv.report import figure_text


def test_value_labels_are_readable():
    assert figure_text.value_label({"mean": 5000, "var": 2.5e7}) == "mean=5000, var=2.5e+07"
    assert figure_text.value_label('{"mean": 5000, "var": 25000000.0}') == "mean=5000, var=2.5e+07"
    assert figure_text.value_label({"type": "biv_adaptive", "ratio": 0.5}) == (
        "type=biv_adaptive, ratio=0.5"
    )
    assert figure_text.value_label([1, 0.5]) == "[1, 0.5]"
    assert figure_text.value_label(0.001) == "0.001"
    assert figure_text.value_label(256) == "256"
    assert figure_text.value_label(True) == "true"
    assert figure_text.value_label("gamma") == "gamma"


SWEEP = {"name": "s", "experiment": "bike", "title": "S", "losses": ["biv"], "points": []}


@pytest.mark.parametrize(
    ("losses", "vary", "expected"),
    [
        (["l2", "biv"], {"training.batch_size": [16, 32]}, "sweep"),
        (["biv"], {"losses.biv.epsilon": [0.1, 1]}, "base"),
        (["biv"], {"losses.biv": [{"type": "biv_adaptive"}]}, "base"),
        # the base's L2 was trained with another batch size or on other noise: no comparison
        (["biv"], {"training.batch_size": [16, 32]}, None),
        (["biv"], {"noise.p": [0.2]}, None),
        (["biv"], {"losses.biv.epsilon": [0.1], "noise.p": [0.2]}, None),
        (["iv", "biv"], {"losses.l2.epsilon": [0.1]}, None),
    ],
)
def test_improvement_reference(losses, vary, expected):
    assert improvement_reference(losses, vary, "l2") == expected
    assert improvement_reference(losses, vary, None) is None


FIGURE = {
    "caption": "Configured text.",
    "panels": [
        {"experiment": "a", "losses": ["l2", "biv"], "labels": {"biv": "BIV (ours)"}},
        {
            "experiment": "b",
            "losses": ["l2"],
            "band": "none",
            "ylim": [0.05, 0.2],
            "reference": {"experiment": "c", "loss": "l2"},
        },
    ],
}
TYPES = {e: {"l2": "mse", "biv": "biv"} for e in "abc"}


def test_learning_curve_captions_name_the_quantity_band_range_and_evaluation(checked_figure):
    figure = checked_figure(FIGURE, TYPES)
    text = figure_text.learning_curves_caption(figure)
    assert text.startswith("Clean test MSE (normalized units) against training steps")
    assert (
        "a: thick: l2, BIV (ours); band: mean ± 1 standard deviation over seeds, clipped at 0"
        in text
    )
    assert "1.6 x the highest minimum of the thick ones" in text
    assert "b: thick: l2; black: No noise - L2; no band; y axis fixed to [0.05, 0.2]." in text
    assert text.endswith("Configured text.")
    same = figure_text.learning_curves_caption(figure, evaluation={e: "original: X" for e in "abc"})
    assert same.count("Test evaluation: original: X.") == 1
    assert same.endswith("Test evaluation: original: X. Configured text.")
    mixed = figure_text.learning_curves_caption(
        figure, evaluation={"a": "standard: S", "b": "original: X", "c": "standard: S"}
    )
    assert "a: test evaluation: standard: S. b: test evaluation: original: X; standard: S." in mixed
    one = checked_figure({"panels": [{"experiment": "a", "band": "ci"}]}, TYPES)
    text = figure_text.learning_curves_caption(one)
    assert "thick: l2, biv; band: 95 % Student-t confidence interval" in text
    assert "a: " not in text  # one panel: not named


def test_every_band_is_described():
    from biv.config.figures import BANDS

    assert tuple(figure_text.BAND_TEXT) == BANDS


def test_sweep_captions_say_what_the_improvement_is_measured_against():
    vary = {"training.batch_size": [16, 32], "noise.components.0": [{"mean": 5000, "var": 2.5e7}]}
    text = figure_text.sweep_caption({**SWEEP, "losses": ["l2", "biv"], "vary": vary}, "l2")
    assert "training.batch_size ∈ {16, 32}; noise.components.0 ∈ {mean=5000, var=2.5e+07}" in text
    assert "the paper's best clean test MSE (normalized units), the lowest point of the" in text
    assert "Heatmaps, training.batch_size across and noise.components.0 down" in text
    assert (
        "one heatmap per loss (l2, biv) on one colour scale; then the relative improvement" in text
    )
    assert "the L2 runs of the same sweep point, on a colour scale centred at 0" in text
    assert "95 % interval over seeds (paired, for the improvement; summary.csv)" in text
    three = {**vary, "noise.p": [0.5]}
    text = figure_text.sweep_caption({**SWEEP, "losses": ["l2", "biv"], "vary": three}, "l2")
    assert (
        "one line per loss (l2, biv) (line style) and per value of noise.components.0, noise.p"
        in text
    )
    assert "Right: relative improvement over L2 (l2)" in text and "Heatmaps" not in text
    text = figure_text.sweep_caption({**SWEEP, "vary": {"losses.biv.epsilon": [0.1]}}, "l2")
    assert "the L2 runs of the base experiment bike (same noise draws)" in text
    text = figure_text.sweep_caption({**SWEEP, "vary": {"noise.p": [0.1]}}, "l2")
    assert "Right:" not in text


def test_seed_captions_say_what_is_joined(checked_figure):
    text = figure_text.seeds_caption(checked_figure(FIGURE, TYPES), {"clean_mse_est"})
    assert text.startswith("Each run's own estimated clean test MSE (normalized units), per seed")
    assert "the grey lines join one seed's runs" in text and text.endswith(
        figure_text.ESTIMATE_NOTE
    )


def test_imports_neither_torch_nor_plotting_nor_pandas():
    code = (
        "import sys, biv.report.figure_text, biv.config.figures; "
        "print(sorted(m for m in ('torch', 'matplotlib', 'pandas', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
