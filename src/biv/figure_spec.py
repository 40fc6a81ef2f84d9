"""Figure settings of the config: panel keys checked and defaults filled, and the captions
generated from the config. Imports neither torch nor matplotlib nor pandas (the config layer and
the Snakefile use it)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: Shaded band around a mean curve -> its description in captions.
BANDS = {
    "std": "mean ± 1 standard deviation over seeds, clipped at 0",
    "ci": "95 % Student-t confidence interval of the mean over seeds, clipped at 0",
    "range": "lowest to highest seed",
    "none": "no band",
}
DEFAULT_BAND = "std"
#: ``ylim: auto`` spans LOW x the lowest minimum of the drawn mean curves to HIGH x the highest
#: minimum of the emphasised mean curves (the paper's panels: Bike [0.05, 0.2], UTKF [0.2, 0.9]).
AUTO_YLIM_LOW = 0.8
AUTO_YLIM_HIGH = 1.6
#: Default colours of emphasised losses by loss type (the paper: L2 blue, BIV red) and of the
#: reference curve (no-noise L2, black); other losses take PALETTE colours in order.
TYPE_COLORS = {"mse": "#1f77b4", "biv": "#d62728"}
NAME_TYPES = {"l2": "mse", "biv": "biv"}  # loss types assumed from names when types are unknown
REFERENCE_COLOR = "black"
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
PANEL_KEYS = (
    "experiment", "title", "losses", "labels", "reference", "emphasis", "colors", "band", "ylim"
)  # fmt: skip
REFERENCE_KEYS = ("experiment", "loss", "label", "color")
AXIS_QUANTITY = "Clean test MSE (normalized units)"
#: The axis label per set of curves shown (biv.aggregate.TEST_METRICS).
QUANTITIES = {
    frozenset({"mse"}): AXIS_QUANTITY,
    frozenset({"clean_mse_est"}): "Estimated clean test MSE (normalized units)",
    frozenset({"mse", "clean_mse_est"}): "Clean test MSE or its estimate (normalized units)",
}


ESTIMATE_NOTE = (
    "Estimated clean test MSE: the test labels are noisy with known variances, so the MSE "
    "against them minus their mean variance (E[(f − ỹ)²] = (f − y)² + σ²)."
)


def axis_quantity(metrics: Iterable[str] = ("mse",)) -> str:
    """What the y axis shows, for the test metrics of the curves drawn (the estimate is the
    MSE against noisy test labels minus their mean known variance; captions say so)."""
    return QUANTITIES[frozenset(metrics) or frozenset({"mse"})]


def _lower(text: str) -> str:
    return text[0].lower() + text[1:]


def _fail(key: str, value: Any, allowed: str) -> ValueError:
    return ValueError(f"{key}: got {value!r}; allowed: {allowed}")


def _is_color(value: Any) -> bool:
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
        raise _fail(key, value, f"a list of {what}: {choices}")
    for name in value:
        if name not in allowed:
            raise _fail(key, name, f"{what}: {choices}")
    if len(set(value)) != len(value):
        raise _fail(key, value, f"a list without repeats of {what}: {choices}")
    return list(value)


def _mapping(key: str, value: Any, allowed: Sequence[str], what: str) -> dict:
    if not isinstance(value, Mapping):
        raise _fail(key, value, f"a mapping from {what} to text")
    for name in value:
        if name not in allowed:
            raise _fail(f"{key}.{name}", name, f"{what}: {', '.join(allowed)}")
    return dict(value)


def _ylim(key: str, value: Any) -> str | list[float]:
    allowed = "'auto' or [low, high] with 0 <= low < high"
    if value == "auto":
        return "auto"
    numbers = isinstance(value, list | tuple) and len(value) == 2
    if not numbers or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value
    ):
        raise _fail(key, value, allowed)
    if not 0 <= value[0] < value[1]:
        raise _fail(key, list(value), allowed)
    return [float(value[0]), float(value[1])]


def default_emphasis(losses: Sequence[str], loss_types: Mapping[str, str] | None) -> list[str]:
    """The first L2 (type mse) and the first BIV loss among ``losses``; without loss types, the
    losses named ``l2`` and ``biv``."""
    types = loss_types if loss_types is not None else NAME_TYPES
    out = []
    for wanted in ("mse", "biv"):
        match = next((loss for loss in losses if types.get(loss) == wanted), None)
        if match is not None:
            out.append(match)
    return [loss for loss in losses if loss in out]


def check_panel(
    key: str,
    panel: Any,
    experiment_losses: Sequence[str],
    loss_types: Mapping[str, str] | None = None,
) -> dict:
    """``panel`` checked against the losses of its experiment, with every default filled in.

    ``key`` is the panel's path as the user wrote it (``figures.paper.panels[0]``); errors are
    ValueErrors whose message starts with the offending key and names what is allowed.
    ``loss_types`` (loss name -> type) chooses the default emphasis and colours by type (mse,
    biv); without it the losses named ``l2`` and ``biv`` are taken for L2 and BIV.
    """
    if not isinstance(panel, Mapping):
        raise _fail(key, panel, "a mapping with at least `experiment`")
    unknown = sorted(set(panel) - set(PANEL_KEYS))
    if unknown:
        raise _fail(f"{key}.{unknown[0]}", unknown[0], f"panel keys {', '.join(PANEL_KEYS)}")
    if not isinstance(panel.get("experiment"), str):
        raise _fail(f"{key}.experiment", panel.get("experiment"), "an experiment name")
    experiment_losses = list(experiment_losses)
    what = f"losses of experiment {panel['experiment']!r}"
    out = dict(panel)
    title = out.setdefault("title", panel["experiment"])
    if not isinstance(title, str):
        raise _fail(f"{key}.title", title, "text")
    losses = out["losses"] = _names(
        f"{key}.losses", out.get("losses", experiment_losses), experiment_losses, what
    )
    if not losses:
        raise _fail(f"{key}.losses", losses, f"at least one of the {what}")
    labels = _mapping(f"{key}.labels", out.get("labels", {}), experiment_losses, what)
    for loss, label in labels.items():
        if not isinstance(label, str):
            raise _fail(f"{key}.labels.{loss}", label, "text")
    out["labels"] = {loss: labels.get(loss, loss) for loss in losses}
    drawn = f"losses drawn in the panel ({', '.join(losses)})"
    if "emphasis" in out:
        emphasis = _names(f"{key}.emphasis", out["emphasis"], losses, drawn)
    else:
        emphasis = default_emphasis(losses, loss_types)
    out["emphasis"] = emphasis
    colors = _mapping(f"{key}.colors", out.get("colors", {}), losses, drawn)
    for loss, color in colors.items():
        if not _is_color(color):
            raise _fail(f"{key}.colors.{loss}", color, COLOR_FORMS)
    types = loss_types if loss_types is not None else NAME_TYPES
    palette = iter(PALETTE * (len(losses) // len(PALETTE) + 1))
    filled = {}
    for loss in losses:
        if loss in colors:
            filled[loss] = colors[loss]
        elif loss in emphasis and types.get(loss) in TYPE_COLORS:
            filled[loss] = TYPE_COLORS[types[loss]]
        else:
            filled[loss] = next(palette)
    out["colors"] = filled
    band = out.setdefault("band", DEFAULT_BAND)
    if band not in BANDS:
        raise _fail(f"{key}.band", band, ", ".join(BANDS))
    out["ylim"] = _ylim(f"{key}.ylim", out.get("ylim", "auto"))
    if out.get("reference") is not None:
        out["reference"] = _reference(f"{key}.reference", out["reference"])
    return out


def _reference(key: str, ref: Any) -> dict:
    if not isinstance(ref, Mapping):
        raise _fail(key, ref, "a mapping with `experiment` and `loss`")
    unknown = sorted(set(ref) - set(REFERENCE_KEYS))
    if unknown:
        raise _fail(f"{key}.{unknown[0]}", unknown[0], f"keys {', '.join(REFERENCE_KEYS)}")
    for name in ("experiment", "loss"):
        if not isinstance(ref.get(name), str):
            raise _fail(f"{key}.{name}", ref.get(name), f"a{'n' * (name[0] == 'e')} {name} name")
    out = {"label": "No noise - L2", "color": REFERENCE_COLOR, **ref}
    if not isinstance(out["label"], str):
        raise _fail(f"{key}.label", out["label"], "text")
    if not _is_color(out["color"]):
        raise _fail(f"{key}.color", out["color"], COLOR_FORMS)
    return out


# ------------------------------------------------------------------------------------ captions


def ylim_text(ylim: str | Sequence[float]) -> str:
    if ylim == "auto":
        return (
            f"y axis zoomed to {AUTO_YLIM_LOW:g} x the lowest minimum of the mean curves up to "
            f"{AUTO_YLIM_HIGH:g} x the highest minimum of the thick ones"
        )
    return f"y axis fixed to [{ylim[0]:g}, {ylim[1]:g}]"


def learning_curves_caption(
    figure: Mapping,
    name: str = "figure",
    metrics: Iterable[str] = ("mse",),
    evaluation: Mapping[str, str] | None = None,
) -> str:
    """Report caption of learning-curve figure ``name``: the quantity (of the test ``metrics``
    drawn), what lines and bands show, the y range, the test evaluation protocol
    (``evaluation``: experiment -> its description, ``TrainingSpec.eval_text``), then the
    configured caption. Panels are completed by :func:`check_panel` against their ``losses``."""
    metrics = set(metrics)
    parts = [
        f"{axis_quantity(metrics)} against training steps: each line is the mean over seeds at "
        "each evaluation step (the paper's curves), thick lines the emphasised losses; the thick "
        "lines are drawn first, and every line after the first is dashed in its own pattern, "
        "so that a curve lying on another still shows."
    ]
    if "clean_mse_est" in metrics:
        parts.append(ESTIMATE_NOTE)
    panels = [
        check_panel(f"figures.{name}.panels[{i}]", panel, panel["losses"])
        for i, panel in enumerate(figure["panels"])
    ]
    for panel in panels:
        thick = ", ".join(panel["labels"][loss] for loss in panel["emphasis"]) or "none"
        where = f"{panel['title']}: " if len(panels) > 1 else ""
        shade = BANDS[panel["band"]]
        if panel["band"] != "none":
            shade = f"band: {shade} (none for a single seed)"
        reference = panel.get("reference")
        black = f"; black: {reference['label']}" if reference else ""
        parts.append(f"{where}thick: {thick}{black}; {shade}; {ylim_text(panel['ylim'])}.")
    parts += evaluation_text(panels, evaluation or {})
    if figure.get("caption"):
        parts.append(figure["caption"])
    return " ".join(parts)


def evaluation_text(panels: list[dict], evaluation: Mapping[str, str]) -> list[str]:
    """Caption sentences on the test evaluation protocol of the drawn experiments: one when
    all share it, else one per panel."""
    per_panel = []
    for panel in panels:
        drawn = [panel["experiment"]] + (
            [panel["reference"]["experiment"]] if "reference" in panel else []
        )
        texts = list(dict.fromkeys(evaluation[e] for e in drawn if e in evaluation))
        per_panel.append((panel["title"], texts))
    every = list(dict.fromkeys(t for _, texts in per_panel for t in texts))
    if len(every) <= 1:
        return [f"Test evaluation: {t}." for t in every]
    return [f"{title}: test evaluation: {'; '.join(texts)}." for title, texts in per_panel if texts]


def value_label(value: Any) -> str:
    """A swept value as text: numbers with %g, mappings as ``mean=5000, var=2.5e+07``."""
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError:
            return value
        if isinstance(decoded, dict | list):
            value = decoded
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={value_label(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(value_label(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float | int):
        return f"{value:g}"
    return str(value)


def improvement_reference(sweep: Mapping, baseline: str | None) -> str | None:
    """Where the L2 of a sweep's improvement panel comes from: ``"sweep"`` (the base
    experiment's baseline loss is one of the sweep's losses, at every point), ``"base"`` (it is
    not, but only losses other than it are varied, so the base experiment's runs of it are the
    L2 of every point, on the same noise draws), or None."""
    if baseline is None:
        return None
    if baseline in sweep.get("losses", [baseline]):
        return "sweep"
    paths = list(sweep["vary"])
    if all(p.startswith("losses.") and p.split(".")[1] != baseline for p in paths):
        return "base"
    return None


def sweep_caption(sweep: Mapping, baseline: str | None, metrics: Iterable[str] = ("mse",)) -> str:
    """Report caption of a sweep figure, from the sweep's config, the base experiment's
    baseline loss and the test metrics drawn."""
    metrics = set(metrics)
    paths = list(sweep["vary"])
    grid = "; ".join(
        f"{p} ∈ {{{', '.join(value_label(v) for v in sweep['vary'][p])}}}" for p in paths
    )
    losses = ", ".join(sweep.get("losses", [])) or "all losses of the base experiment"
    quantity = _lower(axis_quantity(metrics))
    text = (
        f"Sweep {sweep['name']} of experiment {sweep['experiment']}: {grid}. Left: the paper's "
        f"best {quantity}, the lowest point of the seed-averaged curve over training steps, "
        f"against {paths[0]}, one line per loss ({losses})"
    )
    if len(paths) > 1:
        text += f" (line style) and per value of {', '.join(paths[1:])} (colour)"
    text += "; bands: 95 % percentile bootstrap over seeds."
    if "clean_mse_est" in metrics:
        text += f" {ESTIMATE_NOTE}"
    where = improvement_reference(sweep, baseline)
    if where is not None:
        source = (
            "the L2 runs of the same sweep point"
            if where == "sweep"
            else f"the L2 runs of the base experiment {sweep['experiment']} (same noise draws)"
        )
        text += (
            f" Right: relative improvement over L2 ({baseline}), 1 − min(mean curve) / min(mean "
            f"L2 curve), against {source}, with its paired 95 % bootstrap interval over seeds."
        )
    return text
