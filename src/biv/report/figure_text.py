"""The words of the figures: axis quantities, value labels, band and y-range descriptions and
the report captions, for the checked figures of the spec (biv.config.figures). Imports neither
torch nor matplotlib nor pandas (the Snakefile builds the captions)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from biv.config.sweeps import improvement_reference

if TYPE_CHECKING:
    from biv.config.figures import Figure, Panel

#: Each band of biv.config.figures.BANDS, as the captions describe it.
BAND_TEXT = {
    "std": "mean ± 1 standard deviation over seeds, clipped at 0",
    "ci": "95 % Student-t confidence interval of the mean over seeds, clipped at 0",
    "range": "lowest to highest seed",
    "none": "no band",
}
#: ``ylim: auto`` spans LOW x the lowest minimum of the drawn mean curves to HIGH x the highest
#: minimum of the emphasised mean curves (the paper's panels: Bike [0.05, 0.2], UTKF [0.2, 0.9]).
AUTO_YLIM_LOW = 0.8
AUTO_YLIM_HIGH = 1.6
AXIS_QUANTITY = "Clean test MSE (normalized units)"
#: The axis label per set of curves shown (biv.report.tables.TEST_METRICS).
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


def ylim_text(ylim: str | Iterable[float]) -> str:
    if ylim == "auto":
        return (
            f"y axis zoomed to {AUTO_YLIM_LOW:g} x the lowest minimum of the mean curves up to "
            f"{AUTO_YLIM_HIGH:g} x the highest minimum of the thick ones"
        )
    low, high = ylim
    return f"y axis fixed to [{low:g}, {high:g}]"


def learning_curves_caption(
    figure: Figure,
    metrics: Iterable[str] = ("mse",),
    evaluation: Mapping[str, str] | None = None,
) -> str:
    """Report caption of a learning-curve figure: the quantity (of the test ``metrics``
    drawn), what lines and bands show, the y range, the test evaluation protocol
    (``evaluation``: experiment -> its description, ``TrainingSpec.eval_text``), then the
    configured caption."""
    metrics = set(metrics)
    parts = [
        f"{axis_quantity(metrics)} against training steps: each line is the mean over seeds at "
        "each evaluation step (the paper's curves), thick lines the emphasised losses; the thick "
        "lines are drawn first, and every line after the first is dashed in its own pattern, "
        "so that a curve lying on another still shows."
    ]
    if "clean_mse_est" in metrics:
        parts.append(ESTIMATE_NOTE)
    for panel in figure.panels:
        thick = ", ".join(panel.labels[loss] for loss in panel.emphasis) or "none"
        where = f"{panel.title}: " if len(figure.panels) > 1 else ""
        shade = BAND_TEXT[panel.band]
        if panel.band != "none":
            shade = f"band: {shade} (none for a single seed)"
        black = f"; black: {panel.reference.label}" if panel.reference else ""
        parts.append(f"{where}thick: {thick}{black}; {shade}; {ylim_text(panel.ylim)}.")
    parts += evaluation_text(figure.panels, evaluation or {})
    if figure.caption:
        parts.append(figure.caption)
    return " ".join(parts)


def evaluation_text(panels: Iterable[Panel], evaluation: Mapping[str, str]) -> list[str]:
    """Caption sentences on the test evaluation protocol of the drawn experiments: one when
    all share it, else one per panel."""
    per_panel = []
    for panel in panels:
        drawn = [panel.experiment] + ([panel.reference.experiment] if panel.reference else [])
        texts = list(dict.fromkeys(evaluation[e] for e in drawn if e in evaluation))
        per_panel.append((panel.title, texts))
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


def sweep_caption(sweep: Mapping, baseline: str | None, metrics: Iterable[str] = ("mse",)) -> str:
    """Report caption of a sweep figure, from the sweep (:meth:`biv.config.Sweep.to_dict`), the
    base experiment's baseline loss and the test metrics drawn: heatmaps for two swept keys,
    lines against the first for one key or more than two."""
    metrics = set(metrics)
    paths = list(sweep["vary"])
    grid = "; ".join(
        f"{p} ∈ {{{', '.join(value_label(v) for v in sweep['vary'][p])}}}" for p in paths
    )
    losses = ", ".join(sweep.get("losses", [])) or "all losses of the base experiment"
    quantity = _lower(axis_quantity(metrics))
    best = f"the paper's best {quantity}, the lowest point of the seed-averaged curve"
    where = improvement_reference(sweep.get("losses", []), sweep["vary"], baseline)
    against = None
    if where is not None:
        against = (
            f"relative improvement over L2 ({baseline}), 1 − min(mean curve) / min(mean L2 "
            "curve), against "
            + (
                "the L2 runs of the same sweep point"
                if where == "sweep"
                else f"the L2 runs of the base experiment {sweep['experiment']} (same noise draws)"
            )
        )
    text = f"Sweep {sweep['name']} of experiment {sweep['experiment']}: {grid}. "
    if len(paths) == 2:
        text += _heatmaps_text(paths, losses, best, against)
    else:
        text += _lines_text(paths, losses, best, against)
    if "clean_mse_est" in metrics:
        text += f" {ESTIMATE_NOTE}"
    return text


def _lines_text(paths: list[str], losses: str, best: str, against: str | None) -> str:
    """What a sweep figure of lines shows (:func:`sweep_caption`)."""
    text = f"Left: {best} over training steps, against {paths[0]}, one line per loss ({losses})"
    if len(paths) > 1:
        text += f" (line style) and per value of {', '.join(paths[1:])} (colour)"
    text += "; bands: its 95 % interval over seeds (summary.csv; coverage: docs/reproducing.md)."
    if against is not None:
        text += f" Right: {against}, with its paired 95 % t interval."
    return text


def _heatmaps_text(paths: list[str], losses: str, best: str, against: str | None) -> str:
    """What a sweep figure of heatmaps shows (:func:`sweep_caption`)."""
    text = (
        f"Heatmaps, {paths[0]} across and {paths[1]} down: {best} over training steps, one "
        f"heatmap per loss ({losses}) on one colour scale"
    )
    if against is not None:
        text += f"; then the {against}, on a colour scale centred at 0"
    return text + (
        ". Each cell holds the value and, below it, its 95 % interval over seeds (paired, for "
        "the improvement; summary.csv)."
    )


def seeds_caption(figure: Figure, metrics: Iterable[str] = ("mse",)) -> str:
    """Report caption of the per-seed figure of a learning-curve figure (same runs)."""
    quantity = _lower(axis_quantity(metrics))
    text = (
        f"Each run's own {quantity}, per seed, for the curves of the learning-curve figure "
        f"{figure.name!r}: one row of panels per panel, left the lowest point of the seed's own "
        "curve (not the paper's best, which is read off the seed-averaged curve), right its "
        "last evaluation. One column of dots per loss, in its colour; the grey lines join one "
        "seed's runs: every loss of a seed trains on the same noise draw, so they compare "
        "paired."
    )
    if "clean_mse_est" in set(metrics):
        text += f" {ESTIMATE_NOTE}"
    return text
