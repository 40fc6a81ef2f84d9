"""Figure settings: panel keys checked with defaults filled, and the generated captions."""

from __future__ import annotations

import subprocess
import sys

import pytest

from biv import figure_spec
from biv.figure_spec import check_panel

LOSSES = ["l2", "iv", "biv", "cutoff-1", "cutoff-2"]
KEY = "figures.paper.panels[0]"


def test_defaults_are_the_papers_layout():
    panel = check_panel(KEY, {"experiment": "bike"}, LOSSES)
    assert panel == {
        "experiment": "bike",
        "title": "bike",
        "losses": LOSSES,
        "labels": {loss: loss for loss in LOSSES},
        "emphasis": ["l2", "biv"],
        "colors": {
            "l2": "#1f77b4",  # the paper: L2 blue
            "iv": figure_spec.PALETTE[0],
            "biv": "#d62728",  # BIV red
            "cutoff-1": figure_spec.PALETTE[1],
            "cutoff-2": figure_spec.PALETTE[2],
        },
        "band": "std",
        "ylim": "auto",
    }
    ref = check_panel(
        KEY, {"experiment": "bike", "reference": {"experiment": "c", "loss": "l2"}}, LOSSES
    )
    assert ref["reference"] == {
        "experiment": "c",
        "loss": "l2",
        "label": "No noise - L2",
        "color": "black",
    }


def test_values_as_written_are_kept_and_checking_twice_changes_nothing():
    written = {
        "experiment": "bike",
        "title": "Bike",
        "losses": ["biv", "l2"],
        "labels": {"biv": "BIV (ours)"},
        "emphasis": ["biv"],
        "colors": {"biv": "tab:green", "l2": "C3"},
        "band": "range",
        "ylim": [0.05, 0.2],
    }
    panel = check_panel(KEY, written, LOSSES)
    assert panel["labels"] == {"biv": "BIV (ours)", "l2": "l2"}
    assert panel["emphasis"] == ["biv"]
    assert panel["colors"] == {"biv": "tab:green", "l2": "C3"}
    assert (panel["band"], panel["ylim"]) == ("range", [0.05, 0.2])
    assert check_panel(KEY, panel, LOSSES) == panel
    assert written["ylim"] == [0.05, 0.2] and "title" in written  # the input is not modified


def test_default_emphasis_follows_loss_types_when_given():
    losses = ["base", "weighted", "other-biv"]
    types = {"base": "mse", "weighted": "biv", "other-biv": "biv"}
    panel = check_panel(KEY, {"experiment": "e"}, losses, types)
    assert panel["emphasis"] == ["base", "weighted"]
    assert panel["colors"]["base"] == "#1f77b4" and panel["colors"]["weighted"] == "#d62728"
    # without types, names decide: none of these is called l2 or biv
    assert check_panel(KEY, {"experiment": "e"}, losses)["emphasis"] == []
    # an emphasised loss that is not L2 or BIV gets a palette colour
    panel = check_panel(KEY, {"experiment": "e", "emphasis": ["other-biv"]}, losses)
    assert panel["colors"]["other-biv"] == figure_spec.PALETTE[2]


ANY = "allowed: 'auto' or [low, high]"
PANEL_KEYS = "experiment, title, losses, labels, reference, emphasis, colors, band, ylim"
ERRORS = [  # (changes, message after "figures.paper.panels[0].")
    ({"ylim": "zoom"}, f"ylim: got 'zoom'; {ANY} with 0 <= low < high"),
    ({"ylim": [0.2, 0.1]}, f"ylim: got [0.2, 0.1]; {ANY}"),
    ({"ylim": [0.1]}, f"ylim: got [0.1]; {ANY}"),
    ({"ylim": [-1, 1]}, f"ylim: got [-1, 1]; {ANY}"),
    ({"band": "sd"}, "band: got 'sd'; allowed: std, ci, range, none"),
    (
        {"emphasis": ["biv"], "losses": ["l2"]},
        "emphasis: got 'biv'; allowed: losses drawn in the panel (l2)",
    ),
    (
        {"losses": ["l1"]},
        "losses: got 'l1'; allowed: losses of experiment 'bike': l2, iv, biv, cutoff-1, cutoff-2",
    ),
    ({"losses": ["l2", "l2"]}, "losses: got ['l2', 'l2']; allowed: a list without repeats"),
    ({"losses": []}, "losses: got []; allowed: at least one"),
    ({"colors": {"biv": "redish"}}, "colors.biv: got 'redish'; allowed: a colour: '#rrggbb', 'C0'"),
    ({"colors": {"l1": "red"}}, "colors.l1: got 'l1'; allowed: losses drawn in the panel"),
    ({"labels": {"biv": 3}}, "labels.biv: got 3; allowed: text"),
    ({"labels": ["L2"]}, "labels: got ['L2']; allowed: a mapping"),
    ({"linewidth": 3}, f"linewidth: got 'linewidth'; allowed: panel keys {PANEL_KEYS}"),
    (
        {"reference": {"experiment": "c", "loss": "l2", "color": "#12345"}},
        "reference.color: got '#12345'; allowed: a colour",
    ),
    ({"reference": {"experiment": "c"}}, "reference.loss: got None; allowed: a loss name"),
    ({"experiment": None}, "experiment: got None; allowed: an experiment name"),
]


@pytest.mark.parametrize(("changes", "message"), ERRORS)
def test_errors_start_with_the_key_and_name_what_is_allowed(changes, message):
    with pytest.raises(ValueError) as err:
        check_panel(KEY, {"experiment": "bike", **changes}, LOSSES)
    assert str(err.value).startswith(f"{KEY}.{message}")


def test_value_labels_are_readable():
    assert figure_spec.value_label({"mean": 5000, "var": 2.5e7}) == "mean=5000, var=2.5e+07"
    assert figure_spec.value_label('{"mean": 5000, "var": 25000000.0}') == "mean=5000, var=2.5e+07"
    assert figure_spec.value_label({"type": "biv_adaptive", "ratio": 0.5}) == (
        "type=biv_adaptive, ratio=0.5"
    )
    assert figure_spec.value_label(0.001) == "0.001"
    assert figure_spec.value_label(256) == "256"
    assert figure_spec.value_label(True) == "true"
    assert figure_spec.value_label("gamma") == "gamma"


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
    sweep = {**SWEEP, "losses": losses, "vary": vary}
    assert figure_spec.improvement_reference(sweep, "l2") == expected
    assert figure_spec.improvement_reference(sweep, None) is None


def test_captions_name_the_quantity_band_and_range():
    figure = {
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
    text = figure_spec.learning_curves_caption(figure, "paper")
    assert text.startswith("Clean test MSE (normalized units) against training steps")
    assert (
        "a: thick: l2, BIV (ours); band: mean ± 1 standard deviation over seeds, clipped at 0"
        in text
    )
    assert "1.6 x the highest minimum of the thick ones" in text
    assert "b: thick: l2; black: No noise - L2; no band; y axis fixed to [0.05, 0.2]." in text
    assert text.endswith("Configured text.")
    same = figure_spec.learning_curves_caption(
        figure, "paper", evaluation={e: "original: X" for e in "abc"}
    )
    assert same.count("Test evaluation: original: X.") == 1
    assert same.endswith("Test evaluation: original: X. Configured text.")
    mixed = figure_spec.learning_curves_caption(
        figure, "paper", evaluation={"a": "standard: S", "b": "original: X", "c": "standard: S"}
    )
    assert "a: test evaluation: standard: S. b: test evaluation: original: X; standard: S." in mixed

    vary = {"training.batch_size": [16, 32], "noise.components.0": [{"mean": 5000, "var": 2.5e7}]}
    text = figure_spec.sweep_caption({**SWEEP, "losses": ["l2", "biv"], "vary": vary}, "l2")
    assert "training.batch_size ∈ {16, 32}; noise.components.0 ∈ {mean=5000, var=2.5e+07}" in text
    assert "the paper's best clean test MSE (normalized units), the lowest point of the" in text
    assert "one line per loss (l2, biv) (line style) and per value of noise.components.0" in text
    assert "the L2 runs of the same sweep point" in text
    text = figure_spec.sweep_caption({**SWEEP, "vary": {"losses.biv.epsilon": [0.1]}}, "l2")
    assert "the L2 runs of the base experiment bike (same noise draws)" in text
    text = figure_spec.sweep_caption({**SWEEP, "vary": {"noise.p": [0.1]}}, "l2")
    assert "Right:" not in text


def test_imports_neither_torch_nor_plotting_nor_pandas():
    code = (
        "import sys, biv.figure_spec; "
        "print(sorted(m for m in ('torch', 'matplotlib', 'pandas', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
