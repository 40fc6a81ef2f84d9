"""The reproduction report: the paper-defined numbers (from summary.csv) beside the values read
off the paper's figure, as Markdown (results/reproduction.md) and HTML (for the report)."""

from __future__ import annotations

import html
import os
from pathlib import Path

import pandas as pd

from biv.report.html import html_page

DEFINITIONS = (
    "Which quantity is which. The paper reads its values off the **seed-averaged curve**: its "
    "best is the lowest point of the mean curve (summary.csv `min_of_mean_curve`), the final "
    "value its last point (`final_of_mean_curve`), and BIV's improvement over L2 is 1 − min(mean "
    "BIV curve) / min(mean L2 curve) (`rel_improvement_of_min_of_mean_curve`). These are the "
    "numbers compared with the paper. The mean over seeds of each seed's own minimum "
    "(`mean_of_seed_mins`) is never above the minimum of the mean curve and is shown for "
    "reference only, as is the mean of the per-seed improvements "
    "(`mean_of_seed_rel_improvements`)."
)
INTERVALS = (
    "Intervals are nominal 95 % intervals over seeds. The minimum of the mean curve gets the "
    "union of the Student-t intervals of the seeds' values at its step and of their "
    "cross-fitted values (each seed's value at the step where the other seeds' mean curve is "
    "lowest): the first alone is too low, its step being chosen on the same seeds. The "
    "improvement gets the t interval of the ratio of the paired seeds' means at the two minima's "
    "steps (linearized); the final value and the per-seed means the t interval of the per-seed "
    "values. Their coverage is measured by simulating experiments of 3 and 5 seeds from 30 real "
    "seeds' curves (`python -m biv.report.coverage`, docs/reproducing.md): on Bike every interval "
    "covers 94–97 %, the paired difference of final values 92–95 %; on reduced UTKF 93.5–97 %. "
    "Scores are clean test MSE in normalized label units."
)


DISPLAY = {"l2": "L2", "biv": "BIV", "cutoff": "cutoff"}


def _fmt(value: float, low: float, high: float, percent: bool = False) -> str:
    if pd.isna(value):
        return "–"
    f = "{:.1%}" if percent else "{:.3f}"
    return (
        f.format(value)
        if pd.isna(low)
        else f"{f.format(value)} [{f.format(low)}, {f.format(high)}]"
    )


def read_off_range(value: float | list, tolerance: float) -> tuple[float, float]:
    """The range of a value read off the paper's figure: the value (or the given range) widened
    by the read-off uncertainty on both sides."""
    low, high = (value, value) if not isinstance(value, list) else value
    return low - tolerance, high + tolerance


def improvement_range(l2: float | list, biv: float | list, tolerance: float) -> tuple[float, float]:
    """The range of 1 − B / L for B and L anywhere in the read-off ranges of the paper's best
    BIV and L2 (interval arithmetic; both positive)."""
    (b_low, b_high), (l_low, l_high) = read_off_range(biv, tolerance), read_off_range(l2, tolerance)
    return 1 - b_high / l_low, 1 - b_low / l_high


def panel_tolerance(reference: dict, panel: str) -> float:
    """The read-off uncertainty of one panel's values: ``read_off_fraction`` of the height of
    its y axis (``panels.<panel>.axis``: [low, high]; checked by
    :func:`biv.config.reproduction.read_reference`)."""
    low, high = reference["panels"][panel]["axis"]
    return reference["read_off_fraction"] * (high - low)


def inside(value: tuple[float, float], interval: tuple[float, float]) -> str:
    """``yes`` when the value (a point, or a range that counts when it overlaps) lies in the
    interval, else ``no`` (``–`` when the interval is undefined)."""
    if any(pd.isna(v) for v in (*value, *interval)):
        return "–"
    return "yes" if value[1] >= interval[0] and value[0] <= interval[1] else "no"


def _paper(value: float | list, limits: tuple[float, float], percent: bool = False) -> str:
    f = "{:.1%}" if percent else "{:.3f}"
    text = "–".join(f.format(v) for v in value) if isinstance(value, list) else f.format(value)
    return f"{text} [{f.format(limits[0])}, {f.format(limits[1])}]"


def _interval(row: pd.Series, name: str) -> tuple[float, float]:
    """Our 95 % interval of column ``name``, or the value itself when there is none."""
    low, high = row[f"{name}_ci_low"], row[f"{name}_ci_high"]
    return (row[name], row[name]) if pd.isna(low) else (low, high)


def _row(summary: pd.DataFrame, experiment: str, loss: str) -> pd.Series:
    rows = summary[(summary["experiment"] == experiment) & (summary["loss"] == loss)]
    if rows.empty:
        raise ValueError(f"reproduction: no runs of experiment {experiment!r}, loss {loss!r}")
    return rows.iloc[0]


PAPER = "paper [read-off range]"
OURS = "ours, paper's definition [95 % CI]"
OURS_IN_PAPER = "ours in the read-off range"
PAPER_IN_OURS = "paper's value in our CI"
SEED_MINS = "ours, from seed minima [95 % CI] (not the paper's)"


def _measured(panel: dict, summary: pd.DataFrame) -> list[tuple[str, str, str, pd.Series]]:
    """(kind, reference name, what, summary row) of each compared curve of a panel."""
    exp = panel["experiment"]
    out = [("best", "l2", f"best L2 ({panel['l2']})", _row(summary, exp, panel["l2"]))]
    out.append(("best", "biv", f"best BIV ({panel['biv']})", _row(summary, exp, panel["biv"])))
    if panel["cutoffs"]:
        best = min((_row(summary, exp, c) for c in panel["cutoffs"]), key=_best)
        out.append(("best", "cutoff", f"best cutoff ({best['loss']})", best))
    if panel.get("iv"):
        out.append(("best", "iv", f"best IV ({panel['iv']})", _row(summary, exp, panel["iv"])))
    ref = panel["no_noise"]
    clean = _row(summary, ref["experiment"], ref["loss"])
    out.append(("final", "no_noise_l2", f"no-noise L2 ({ref['experiment']}/{ref['loss']})", clean))
    out.append(("final", "biv", f"BIV ({panel['biv']})", _row(summary, exp, panel["biv"])))
    if panel.get("iv"):
        out.append(("final", "iv", f"IV ({panel['iv']})", _row(summary, exp, panel["iv"])))
    return out


def _best(row: pd.Series) -> float:
    return row["min_of_mean_curve"]


def panel_rows(panel: dict, reference: dict, summary: pd.DataFrame, tolerance: float) -> list:
    """Best L2, BIV, cutoff and IV (each the minimum of the mean curve), the final points of the
    no-noise L2, BIV and IV mean curves, and BIV's improvement over L2: ours with its interval
    beside the paper's read-off value with its range (± ``tolerance``), and the two tests: ours
    inside the paper's range, the paper's value inside our interval. A paper value given as
    text (one that could not be read off) is shown as it is, untested."""
    rows = []
    for kind, name, what, row in _measured(panel, summary):
        if kind == "best":
            what, column = f"{what}: min of mean curve", "min_of_mean_curve"
            seed_column = "mean_of_seed_mins"
        else:
            what, column, seed_column = f"{what}: final of mean curve", "final_of_mean_curve", None
        paper = reference.get(kind, {}).get(name)
        limits = read_off_range(paper, tolerance) if _is_value(paper) else None
        step = str(int(row[f"{column}_step"]))
        rows.append(_compared(what, paper, limits, row, column, step, seed_column))
    row = _improvement_row(panel, summary)
    best = reference.get("best", {})
    paper = limits = None
    if _is_value(best.get("l2")) and _is_value(best.get("biv")):
        paper = 1 - _mid(best["biv"]) / _mid(best["l2"])
        limits = improvement_range(best["l2"], best["biv"], tolerance)
    what = "BIV's improvement over L2: 1 − min mean BIV / min mean L2 curve"
    name = "rel_improvement_of_min_of_mean_curve"
    rows.append(
        _compared(what, paper, limits, row, name, "–", "mean_of_seed_rel_improvements", True)
    )
    return rows


def _is_value(paper) -> bool:
    return isinstance(paper, int | float | list)


def _mid(value: float | list) -> float:
    return sum(value) / 2 if isinstance(value, list) else value


def _compared(
    what: str,
    paper: float | list | str | None,
    limits: tuple[float, float] | None,
    row: pd.Series,
    column: str,
    step: str,
    seed_column: str | None,
    percent: bool = False,
) -> dict:
    ours = _interval(row, column)
    seeds = "–"
    if seed_column is not None:
        seeds = _fmt(row[seed_column], *_interval(row, seed_column), percent)
    if limits is None:
        shown, ours_in, paper_in = "–" if paper is None else str(paper), "–", "–"
    else:
        shown = _paper(paper, limits, percent)
        point = (row[column], row[column])
        value = tuple(paper) if isinstance(paper, list) else (paper, paper)
        ours_in, paper_in = inside(point, limits), inside(value, ours)
    return {
        "quantity": what,
        PAPER: shown,
        OURS: _fmt(row[column], *ours, percent),
        "at step": step,
        OURS_IN_PAPER: ours_in,
        PAPER_IN_OURS: paper_in,
        SEED_MINS: seeds,
        "seeds": str(int(row["n_paired"] if percent else row["n_seeds"])),
    }


def _improvement_row(panel: dict, summary: pd.DataFrame) -> pd.Series:
    """The summary row of the panel's BIV, whose improvement is taken against its L2."""
    row = _row(summary, panel["experiment"], panel["biv"])
    if row["baseline"] != panel["l2"] or row["baseline_experiment"] != panel["experiment"]:
        raise ValueError(
            f"reproduction: the summary compares {panel['experiment']}/{panel['biv']} with "
            f"{row['baseline_experiment']}/{row['baseline']}, not with {panel['l2']}: make "
            f"{panel['l2']!r} the experiment's baseline"
        )
    return row


TESTS = (
    "Each paper value is given with its read-off range (the value ± the panel's read-off "
    "uncertainty, a stated fraction of its y axis), and each row says which of two tests hold: "
    "our value inside the paper's read-off range, and the paper's value inside our 95 % "
    "interval. A paper value that could not be read off the figure is shown as text, untested."
)
IMPROVEMENT = (
    "BIV's improvement over L2 is the paper's definition, 1 − min(mean BIV curve) / min(mean L2 "
    "curve), with the interval above; the paper's value is computed from its "
    "read-off best values, and its range from their read-off ranges (the smallest and largest "
    "1 − B / L with B and L anywhere in them). Its seed-minima column is the mean of the per-seed "
    "improvements 1 − BIV seed min / L2 seed min."
)


def blocks(block: dict, reference: dict, summary: pd.DataFrame) -> list[tuple[str, object]]:
    """The report's content as (kind, value) blocks: h1, h2, p (text) and table (DataFrame)."""
    out: list[tuple[str, object]] = [
        ("h1", "Reproduction of Mai, Khamies & Paull (2021)"),
        ("p", f"Reference values: {reference.get('source', '')}. {TESTS}"),
        ("p", DEFINITIONS),
        ("p", INTERVALS),
        ("p", IMPROVEMENT),
    ]
    if block.get("note"):
        out.append(("p", f"Setting: {block['note']}"))
    for name, panel in block["panels"].items():
        ref = reference["panels"].get(name, {})
        tolerance = panel_tolerance(reference, name)
        axis = ref["axis"]
        out += [
            ("h2", ref.get("title", name)),
            (
                "p",
                f"Read-off uncertainty ±{tolerance:.4g}: {reference['read_off_fraction']:g} of "
                f"the panel's y axis, {axis[0]:g} to {axis[1]:g}.",
            ),
            ("table", pd.DataFrame(panel_rows(panel, ref, summary, tolerance))),
        ]
    return out


def report(
    block: dict, reference: dict, summary: pd.DataFrame, figure: str | Path, out: str | Path
) -> str:
    """Markdown text of results/reproduction.md."""
    lines = []
    for kind, value in blocks(block, reference, summary):
        if kind == "table":
            lines += [value.to_markdown(index=False, disable_numparse=True), ""]
        else:
            prefix = {"h1": "# ", "h2": "## ", "p": ""}[kind]
            lines += [f"{prefix}{value}", ""]
    rel = os.path.relpath(figure, Path(out).parent)
    lines += ["## Regenerated figure", "", f"![learning curves]({rel})", ""]
    return "\n".join(lines)


def report_html(block: dict, reference: dict, summary: pd.DataFrame) -> str:
    """The same report as a self-contained HTML page (tables readable in the Snakemake report;
    the figure is a separate item of the report)."""
    parts = []
    title = ""
    for kind, value in blocks(block, reference, summary):
        if kind == "h1":
            title = value
        elif kind == "table":
            parts.append(value.to_html(index=False, border=0))
        else:
            text = html.escape(value)
            # **bold** and `code` of the Markdown text
            for mark, tag in (("**", "strong"), ("`", "code")):
                pieces = text.split(mark)
                text = "".join(f"<{tag}>{p}</{tag}>" if i % 2 else p for i, p in enumerate(pieces))
            parts.append(f"<{kind}>{text}</{kind}>")
    return html_page(title, "".join(parts))
