"""Figure settings: each panel checked once, at plan time, into a frozen Figure with every
default filled in (from the loss types); errors name the key as written; the plotting job
rebuilds the Figure from plain data without checking it again."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from biv.config import build_plan
from biv.config import figures as spec_figures
from biv.config.errors import ConfigError
from biv.config.figures import PALETTE, Figure, Panel, Reference, build_panel

ROOT = Path(__file__).resolve().parents[1]
LOSSES = ["l2", "iv", "biv", "cutoff-1", "cutoff-2"]
TYPES = {"l2": "mse", "iv": "iv", "biv": "biv", "cutoff-1": "cutoff", "cutoff-2": "cutoff"}
KEY = "figures.paper.panels[0]"


def test_defaults_are_the_papers_layout():
    panel = build_panel(KEY, {"experiment": "bike"}, TYPES)
    assert panel == Panel(
        experiment="bike",
        title="bike",
        losses=tuple(LOSSES),
        labels={loss: loss for loss in LOSSES},
        emphasis=("l2", "biv"),
        colors={
            "l2": "#1f77b4",  # the paper: L2 blue
            "iv": PALETTE[0],
            "biv": "#d62728",  # BIV red
            "cutoff-1": PALETTE[1],
            "cutoff-2": PALETTE[2],
        },
        band="std",
        ylim="auto",
        reference=None,
    )
    ref = build_panel(
        KEY, {"experiment": "bike", "reference": {"experiment": "c", "loss": "l2"}}, TYPES
    )
    assert ref.reference == Reference("c", "l2", "No noise - L2", "black")


def test_values_as_written_are_kept_and_the_input_is_not_modified():
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
    before = copy.deepcopy(written)
    panel = build_panel(KEY, written, TYPES)
    assert panel.losses == ("biv", "l2") and panel.title == "Bike"
    assert panel.labels == {"biv": "BIV (ours)", "l2": "l2"}
    assert panel.emphasis == ("biv",)
    assert panel.colors == {"biv": "tab:green", "l2": "C3"}
    assert (panel.band, panel.ylim) == ("range", (0.05, 0.2))
    assert written == before


def test_default_emphasis_and_colours_follow_the_loss_types():
    types = {"base": "mse", "weighted": "biv", "other-biv": "biv"}
    panel = build_panel(KEY, {"experiment": "e"}, types)
    assert panel.emphasis == ("base", "weighted")
    assert panel.colors["base"] == "#1f77b4" and panel.colors["weighted"] == "#d62728"
    # names do not decide: a loss called l2 of another type is not the L2
    assert build_panel(KEY, {"experiment": "e"}, {"l2": "iv", "biv": "cutoff"}).emphasis == ()
    # an emphasised loss that is not the first L2 or BIV still gets a type colour; an
    # emphasised loss of another type a palette colour
    panel = build_panel(KEY, {"experiment": "e", "emphasis": ["other-biv"]}, types)
    assert panel.colors == {"base": PALETTE[0], "weighted": PALETTE[1], "other-biv": "#d62728"}
    panel = build_panel(KEY, {"experiment": "e", "emphasis": ["l2"]}, {"l2": "iv"})
    assert panel.colors == {"l2": PALETTE[0]}


NOT = "is not allowed; expected"
YLIM = "'auto' or [low, high] with 0 <= low < high"
PANEL_KEYS = "experiment, title, losses, labels, reference, emphasis, colors, band, ylim"
OF_BIKE = f"losses of experiment 'bike': {', '.join(LOSSES)}"
ERRORS = [  # (changes, message after "figures.paper.panels[0].")
    ({"ylim": "zoom"}, f"ylim: 'zoom' {NOT} {YLIM}"),
    ({"ylim": [0.2, 0.1]}, f"ylim: [0.2, 0.1] {NOT} {YLIM}"),
    ({"ylim": [0.1]}, f"ylim: [0.1] {NOT} {YLIM}"),
    ({"ylim": [-1, 1]}, f"ylim: [-1, 1] {NOT} {YLIM}"),
    ({"ylim": [0, float("inf")]}, f"ylim: [0, inf] {NOT} {YLIM}"),
    ({"band": "sd"}, f"band: 'sd' {NOT} one of std, ci, range, none"),
    (
        {"emphasis": ["biv"], "losses": ["l2"]},
        f"emphasis[0]: 'biv' {NOT} one of the losses drawn in the panel: l2",
    ),
    ({"losses": ["l1"]}, f"losses[0]: 'l1' {NOT} one of the {OF_BIKE}"),
    ({"losses": ["l2", "l2"]}, f"losses[1]: 'l2' {NOT} a list without repeats of {OF_BIKE}"),
    ({"losses": "l2"}, f"losses: 'l2' {NOT} a list of {OF_BIKE}"),
    ({"losses": []}, f"losses: [] {NOT} at least one of the losses of experiment 'bike'"),
    ({"colors": {"biv": "redish"}}, f"colors.biv: 'redish' {NOT} a colour: '#rrggbb', 'C0'"),
    ({"colors": {"l1": "red"}}, f"colors.l1: 'l1' {NOT} one of the losses drawn in the panel"),
    ({"colors": "red"}, f"colors: 'red' {NOT} a mapping from losses drawn in the panel to colours"),
    ({"labels": {"biv": 3}}, f"labels.biv: 3 {NOT} text"),
    ({"labels": ["L2"]}, f"labels: ['L2'] {NOT} a mapping from losses of experiment 'bike'"),
    ({"title": 3}, f"title: 3 {NOT} text"),
    ({"linewidth": 3}, f"linewidth: 'linewidth' {NOT} one of the panel keys: {PANEL_KEYS}"),
    ({"reference": "clean"}, f"reference: 'clean' {NOT} a mapping with `experiment` and `loss`"),
    (
        {"reference": {"experiment": "c", "loss": "l2", "color": "#12345"}},
        f"reference.color: '#12345' {NOT} a colour",
    ),
    (
        {"reference": {"experiment": "c", "loss": "l2", "label": 1}},
        f"reference.label: 1 {NOT} text",
    ),
    (
        {"reference": {"experiment": "c", "loss": "l2", "width": 1}},
        f"reference.width: 'width' {NOT} one of the reference keys: experiment, loss, label, color",
    ),
    ({"reference": {"experiment": "c"}}, f"reference.loss: None {NOT} a loss name"),
    ({"experiment": None}, f"experiment: None {NOT} an experiment name"),
]


@pytest.mark.parametrize(("changes", "message"), ERRORS)
def test_errors_name_the_key_as_written_and_what_is_allowed(changes, message):
    with pytest.raises(ConfigError) as err:
        build_panel(KEY, {"experiment": "bike", **changes}, TYPES)
    assert str(err.value).startswith(f"{KEY}.{message}")
    assert err.value.key == f"{KEY}.{message.split(':')[0]}"


def demo_config() -> dict:
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


FIGURE_ERRORS = [  # (change to figures.learning_curves, key, problem)
    (lambda f: f["panels"][0]["labels"].update(l2=2), "panels[0].labels.l2", f"2 {NOT} text"),
    (lambda f: f.update(panels=[]), "panels", f"[] {NOT} a non-empty list of panels"),
    (
        lambda f: f.update(legend=1),
        "legend",
        f"'legend' {NOT} one of the figure keys: title, caption, panels",
    ),
    (lambda f: f.update(caption=1), "caption", f"1 {NOT} text"),
    (lambda f: f["panels"].append(3), "panels[1]", f"3 {NOT} a mapping with at least `experiment`"),
    (
        lambda f: f["panels"][0].update(experiment=None),
        "panels[0].experiment",
        f"None {NOT} an experiment name",
    ),
    (
        lambda f: f["panels"][0].update(experiment="nope"),
        "panels[0].experiment",
        "unknown experiment 'nope'",
    ),
    (
        lambda f: f["panels"][0]["reference"].update(experiment="nope"),
        "panels[0].reference.experiment",
        "unknown experiment 'nope'",
    ),
    (
        lambda f: f["panels"][0]["reference"].update(loss="biv"),
        "panels[0].reference.loss",
        "'biv' is not a loss of 'demo-clean'",
    ),
]


@pytest.mark.parametrize(("change", "key", "problem"), FIGURE_ERRORS)
def test_plan_errors_name_the_figure_key_as_written(change, key, problem):
    config = demo_config()
    change(config["figures"]["learning_curves"])
    with pytest.raises(ConfigError) as err:
        build_plan(config)
    assert err.value.key == f"figures.learning_curves.{key}"
    assert err.value.problem.startswith(problem)


def test_the_plan_holds_typed_figures_checked_once(monkeypatch):
    calls = []
    check = spec_figures.build_panel
    monkeypatch.setattr(spec_figures, "build_panel", lambda *a: calls.append(a[0]) or check(*a))
    plan = build_plan(demo_config())
    figure = plan.figures["learning_curves"]
    assert isinstance(figure, Figure) and calls == ["figures.learning_curves.panels[0]"]
    (panel,) = figure.panels
    assert panel.emphasis == ("l2", "biv") and panel.reference.experiment == "demo-clean"
    assert figure.experiments == {"demo", "demo-clean"}
    with pytest.raises(AttributeError):
        figure.title = "changed"  # frozen


def test_the_plotting_job_rebuilds_the_figure_from_plain_data_without_checking(monkeypatch):
    figure = build_plan(demo_config()).figures["learning_curves"]
    data = figure.to_dict()
    assert yaml.safe_load(yaml.safe_dump(data)) == data  # plain data: a stable params trigger
    assert repr(data) == repr(copy.deepcopy(data))

    def checked_again(*args):
        raise AssertionError("a panel was checked again")

    for name in ("build_figure", "build_panel", "is_color", "check_run_ref"):
        monkeypatch.setattr(spec_figures, name, checked_again)
    assert Figure.from_dict(data) == figure
