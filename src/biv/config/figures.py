"""The ``figures`` and ``reproduction`` blocks: each learning-curve figure checked once against
the experiments, its defaults filled in (labels, emphasis and colours from the loss types), into
a frozen :class:`Figure`; the reproduction's runs and reference file checked.

A Figure travels to its plotting job as plain data (:meth:`Figure.to_dict`, a rule param) and is
rebuilt there by :meth:`Figure.from_dict`, which trusts it and checks nothing again. Captions and
line styles belong to the plotting side (biv.report.figure_text, biv.report.plots)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from biv.config.errors import ConfigError, fail

#: Shaded band around each mean curve (their descriptions: biv.report.figure_text.BAND_TEXT).
BANDS = ("std", "ci", "range", "none")
DEFAULT_BAND = "std"
#: Default colours of emphasised losses by loss type (the paper: L2 blue, BIV red) and of the
#: reference curve (no-noise L2, black); other losses take PALETTE colours in order.
TYPE_COLORS = {"mse": "#1f77b4", "biv": "#d62728"}
REFERENCE_COLOR = "black"
REFERENCE_LABEL = "No noise - L2"
PALETTE = ("#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
NAMED_COLORS = frozenset(
    ("black", "white", "gray", "grey", "silver", "red", "darkred", "crimson", "maroon", "orange")
    + ("darkorange", "gold", "yellow", "olive", "green", "darkgreen", "lime", "teal", "cyan")
    + ("blue", "darkblue", "navy", "royalblue", "purple", "magenta", "pink", "brown")
)
TAB_COLORS = ("blue", "orange", "green", "red", "purple", "brown", "pink", "gray", "olive", "cyan")
COLOR_FORMS = (
    "a colour: '#rrggbb', 'C0'..'C9', 'tab:<blue|orange|green|red|purple|brown|pink|gray|olive|"
    f"cyan>' or one of {', '.join(sorted(NAMED_COLORS))}"
)
FIGURE_KEYS = ("title", "caption", "panels")
PANEL_KEYS = (
    "experiment", "title", "losses", "labels", "reference", "emphasis", "colors", "band", "ylim"
)  # fmt: skip
REFERENCE_KEYS = ("experiment", "loss", "label", "color")


@dataclass(frozen=True)
class Reference:
    """Another experiment's loss drawn as the reference curve (no-noise L2)."""

    experiment: str
    loss: str
    label: str
    color: str


@dataclass(frozen=True)
class Panel:
    """One panel, every default filled in: ``labels`` and ``colors`` map each drawn loss."""

    experiment: str
    title: str
    losses: tuple[str, ...]
    labels: dict[str, str]
    emphasis: tuple[str, ...]
    colors: dict[str, str]
    band: str
    ylim: str | tuple[float, float]  # "auto" or (low, high)
    reference: Reference | None


@dataclass(frozen=True)
class Figure:
    """A learning-curve figure: panels side by side."""

    name: str
    title: str
    caption: str
    panels: tuple[Panel, ...]

    @property
    def experiments(self) -> set[str]:
        """Experiments drawn, references included."""
        shown = {panel.experiment for panel in self.panels}
        return shown | {p.reference.experiment for p in self.panels if p.reference is not None}

    def to_dict(self) -> dict:
        """Plain data (lists, dicts, text) whose repr is stable: a rule param."""
        panels = []
        for p in self.panels:
            panel = {
                "experiment": p.experiment,
                "title": p.title,
                "losses": list(p.losses),
                "labels": dict(p.labels),
                "emphasis": list(p.emphasis),
                "colors": dict(p.colors),
                "band": p.band,
                "ylim": p.ylim if p.ylim == "auto" else list(p.ylim),
            }
            if p.reference is not None:
                panel["reference"] = asdict(p.reference)
            panels.append(panel)
        return {"name": self.name, "title": self.title, "caption": self.caption, "panels": panels}

    @classmethod
    def from_dict(cls, data: Mapping) -> Figure:
        """The Figure of :meth:`to_dict`'s output, trusted as it is: nothing is checked again."""
        panels = []
        for p in data["panels"]:
            ref = p.get("reference")
            fields = {**p, "losses": tuple(p["losses"]), "emphasis": tuple(p["emphasis"])}
            fields["ylim"] = p["ylim"] if p["ylim"] == "auto" else tuple(p["ylim"])
            fields["reference"] = None if ref is None else Reference(**ref)
            panels.append(Panel(**fields))
        return cls(data["name"], data["title"], data["caption"], tuple(panels))


def build_figure(name: str, fig: Any, experiments: Mapping) -> Figure:
    """Figure ``figures.<name>`` checked against ``experiments`` (name ->
    :class:`biv.config.experiment.Experiment`)."""
    key = f"figures.{name}"
    _mapping(key, fig, FIGURE_KEYS, "a mapping with `panels`", "figure keys")
    for field in ("title", "caption"):
        if not isinstance(fig.get(field, ""), str):
            raise fail(f"{key}.{field}", fig[field], "text")
    written = fig.get("panels")
    if not isinstance(written, list) or not written:
        raise fail(f"{key}.panels", written, "a non-empty list of panels")
    panels = []
    for i, panel in enumerate(written):
        pkey = f"{key}.panels[{i}]"
        experiment = panel.get("experiment") if isinstance(panel, Mapping) else None
        exp = experiments.get(experiment) if isinstance(experiment, str) else None
        if isinstance(experiment, str) and exp is None:
            raise ConfigError(f"{pkey}.experiment", f"unknown experiment {experiment!r}")
        types = {name: loss.type for name, loss in exp.losses.items()} if exp else {}
        panels.append(build_panel(pkey, panel, types))  # a bad panel fails before types matter
        if panels[-1].reference is not None:
            check_run_ref(f"{pkey}.reference", asdict(panels[-1].reference), experiments)
    return Figure(name, fig.get("title", ""), fig.get("caption", ""), tuple(panels))


def build_panel(key: str, panel: Any, loss_types: Mapping[str, str]) -> Panel:
    """``panel`` checked against the losses of its experiment (``loss_types``: each loss name,
    in the experiment's order, -> its type), with every default filled in. Errors name the key
    as written (``figures.paper.panels[0].labels.l2``) and what is allowed."""
    _mapping(key, panel, PANEL_KEYS, "a mapping with at least `experiment`", "panel keys")
    experiment = panel.get("experiment")
    if not isinstance(experiment, str):
        raise fail(f"{key}.experiment", experiment, "an experiment name")
    title = panel.get("title", experiment)
    if not isinstance(title, str):
        raise fail(f"{key}.title", title, "text")
    known = list(loss_types)
    what = f"losses of experiment {experiment!r}"
    losses = _names(f"{key}.losses", panel.get("losses", known), known, what)
    if not losses:
        raise fail(f"{key}.losses", losses, f"at least one of the {what}")
    labels = _texts(f"{key}.labels", panel.get("labels", {}), known, what)
    drawn = "losses drawn in the panel"
    if "emphasis" in panel:
        emphasis = _names(f"{key}.emphasis", panel["emphasis"], losses, drawn)
    else:
        emphasis = default_emphasis(losses, loss_types)
    colors = _colors(f"{key}.colors", panel.get("colors", {}), losses, drawn)
    band = panel.get("band", DEFAULT_BAND)
    if band not in BANDS:
        raise fail(f"{key}.band", band, f"one of {', '.join(BANDS)}")
    ref = panel.get("reference")
    return Panel(
        experiment=experiment,
        title=title,
        losses=tuple(losses),
        labels={loss: labels.get(loss, loss) for loss in losses},
        emphasis=tuple(emphasis),
        colors=default_colors(losses, emphasis, loss_types, colors),
        band=band,
        ylim=_ylim(f"{key}.ylim", panel.get("ylim", "auto")),
        reference=None if ref is None else _reference(f"{key}.reference", ref),
    )


def default_emphasis(losses: Sequence[str], loss_types: Mapping[str, str]) -> list[str]:
    """The first L2 (type mse) and the first BIV loss among ``losses``, in their order."""
    firsts = {next((x for x in losses if loss_types.get(x) == t), None) for t in ("mse", "biv")}
    return [loss for loss in losses if loss in firsts]


def default_colors(
    losses: Sequence[str],
    emphasis: Sequence[str],
    loss_types: Mapping[str, str],
    written: Mapping[str, str],
) -> dict[str, str]:
    """Each loss's colour: as written, else TYPE_COLORS for an emphasised L2 or BIV, else the
    next PALETTE colour."""
    palette = iter(PALETTE * (len(losses) // len(PALETTE) + 1))
    colors = {}
    for loss in losses:
        if loss in written:
            colors[loss] = written[loss]
        elif loss in emphasis and loss_types.get(loss) in TYPE_COLORS:
            colors[loss] = TYPE_COLORS[loss_types[loss]]
        else:
            colors[loss] = next(palette)
    return colors


def is_color(value: Any) -> bool:
    """Whether ``value`` is one of the colour forms of :data:`COLOR_FORMS`."""
    if not isinstance(value, str):
        return False
    return bool(
        re.fullmatch(r"#[0-9a-fA-F]{6}([0-9a-fA-F]{2})?|C[0-9]", value)
        or value in NAMED_COLORS
        or (value.startswith("tab:") and value[4:] in TAB_COLORS)
    )


def _names(key: str, value: Any, allowed: Sequence[str], what: str) -> list[str]:
    choices = ", ".join(allowed)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise fail(key, value, f"a list of {what}: {choices}")
    for i, name in enumerate(value):
        if name not in allowed:
            raise fail(f"{key}[{i}]", name, f"one of the {what}: {choices}")
        if value.index(name) != i:
            raise fail(f"{key}[{i}]", name, f"a list without repeats of {what}: {choices}")
    return list(value)


def _mapping(key: str, value: Any, allowed: Sequence[str], expected: str, keys: str) -> dict:
    """``value``, a mapping (else ``expected``) whose keys are among ``allowed`` (``keys``)."""
    if not isinstance(value, Mapping):
        raise fail(key, value, expected)
    for name in value:
        if name not in allowed:
            raise fail(f"{key}.{name}", name, f"one of the {keys}: {', '.join(allowed)}")
    return dict(value)


def _texts(key: str, value: Any, allowed: Sequence[str], what: str) -> dict[str, str]:
    texts = _mapping(key, value, allowed, f"a mapping from {what} to text", what)
    for name, text in texts.items():
        if not isinstance(text, str):
            raise fail(f"{key}.{name}", text, "text")
    return texts


def _colors(key: str, value: Any, allowed: Sequence[str], what: str) -> dict[str, str]:
    colors = _mapping(key, value, allowed, f"a mapping from {what} to colours", what)
    for name, color in colors.items():
        if not is_color(color):
            raise fail(f"{key}.{name}", color, COLOR_FORMS)
    return colors


def _ylim(key: str, value: Any) -> str | tuple[float, float]:
    allowed = "'auto' or [low, high] with 0 <= low < high"
    if value == "auto":
        return "auto"
    numbers = isinstance(value, list | tuple) and len(value) == 2
    if not numbers or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value
    ):
        raise fail(key, value, allowed)
    if not 0 <= value[0] < value[1]:
        raise fail(key, list(value), allowed)
    return float(value[0]), float(value[1])


def _reference(key: str, ref: Any) -> Reference:
    _mapping(key, ref, REFERENCE_KEYS, "a mapping with `experiment` and `loss`", "reference keys")
    for name in ("experiment", "loss"):
        if not isinstance(ref.get(name), str):
            raise fail(f"{key}.{name}", ref.get(name), f"a{'n' * (name[0] == 'e')} {name} name")
    label, color = ref.get("label", REFERENCE_LABEL), ref.get("color", REFERENCE_COLOR)
    if not isinstance(label, str):
        raise fail(f"{key}.label", label, "text")
    if not is_color(color):
        raise fail(f"{key}.color", color, COLOR_FORMS)
    return Reference(ref["experiment"], ref["loss"], label, color)


def check_run_ref(key: str, ref: Mapping, experiments: Mapping) -> None:
    exp = experiments.get(ref.get("experiment"))
    if exp is None:
        raise ConfigError(f"{key}.experiment", f"unknown experiment {ref.get('experiment')!r}")
    if ref.get("loss") not in exp.losses:
        raise ConfigError(f"{key}.loss", f"{ref.get('loss')!r} is not a loss of {exp.name!r}")
