"""The reproduction report: the paper-defined numbers (from summary.csv) beside the values read
off the paper's figure, as Markdown (results/reproduction.md) and HTML (for the report)."""

from __future__ import annotations

import html
import os
from pathlib import Path

import pandas as pd

from biv.report.html import html_page
from biv.report.statistics import N_BOOTSTRAP

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
    f"Intervals are 95 %: percentile bootstrap over seeds ({N_BOOTSTRAP} seeded resamples, "
    "paired by seed for the improvement) for the minimum of the mean curve and the improvement; "
    "Student-t over seeds for the final value and the per-seed means. With 3 to 5 seeds they are "
    "rough (the bootstrap ones tend to be too narrow). Scores are clean test MSE in normalized "
    "label units."
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


def verdict(paper: tuple[float, float], ours: tuple[float, float]) -> str:
    """``consistent`` when the paper's range and our interval overlap, else which side ours is."""
    if ours[1] < paper[0]:
        return "no: ours lower"
    if ours[0] > paper[1]:
        return "no: ours higher"
    return "consistent"


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
VERDICT = "verdict (consistent: the ranges overlap)"
SEED_MINS = "ours, from seed minima [95 % CI] (not the paper's)"


def panel_rows(panel: dict, reference: dict, summary: pd.DataFrame, tolerance: float) -> list:
    """Best L2, best BIV, best cutoff (each the minimum of the mean curve), the final point of
    the no-noise L2 mean curve and BIV's improvement over L2: ours with its interval beside the
    paper's read-off value with its range, and whether the two overlap."""
    exp = panel["experiment"]
    measured = [("best", "l2", panel["l2"], _row(summary, exp, panel["l2"]))]
    measured.append(("best", "biv", panel["biv"], _row(summary, exp, panel["biv"])))
    if panel["cutoffs"]:
        cutoffs = [_row(summary, exp, c) for c in panel["cutoffs"]]
        best = min(cutoffs, key=lambda r: r["min_of_mean_curve"])
        measured.append(("best", "cutoff", best["loss"], best))
    ref = panel["no_noise"]
    measured.append(
        ("final", "no_noise_l2", ref["loss"], _row(summary, ref["experiment"], ref["loss"]))
    )
    rows = []
    for kind, name, loss, row in measured:
        if kind == "best":
            what = f"best {DISPLAY[name]} ({loss}): min of mean curve"
            column, seed_column = "min_of_mean_curve", "mean_of_seed_mins"
        else:
            what = f"no-noise L2 ({ref['experiment']}/{loss}): final of mean curve"
            column, seed_column = "final_of_mean_curve", None
        paper = reference.get(kind, {}).get(name)
        rows.append(
            _compared(
                what,
                paper,
                None if paper is None else read_off_range(paper, tolerance),
                row,
                column,
                str(int(row[f"{column}_step"])),
                seed_column,
            )
        )
    row = _improvement_row(panel, summary)
    best = reference.get("best", {})
    paper = limits = None
    if "l2" in best and "biv" in best:
        paper = 1 - _mid(best["biv"]) / _mid(best["l2"])
        limits = improvement_range(best["l2"], best["biv"], tolerance)
    what = "BIV's improvement over L2: 1 − min mean BIV / min mean L2 curve"
    name = "rel_improvement_of_min_of_mean_curve"
    rows.append(
        _compared(what, paper, limits, row, name, "–", "mean_of_seed_rel_improvements", True)
    )
    return rows


def _mid(value: float | list) -> float:
    return sum(value) / 2 if isinstance(value, list) else value


def _compared(
    what: str,
    paper: float | list | None,
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
    return {
        "quantity": what,
        PAPER: "–" if paper is None else _paper(paper, limits, percent),
        OURS: _fmt(row[column], *ours, percent),
        "at step": step,
        VERDICT: "–" if paper is None else verdict(limits, ours),
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


IMPROVEMENT = (
    "BIV's improvement over L2 is the paper's definition, 1 − min(mean BIV curve) / min(mean L2 "
    "curve), with a bootstrap interval paired by seed; the paper's value is computed from its "
    "read-off best values, and its range from their read-off ranges (the smallest and largest "
    "1 − B / L with B and L anywhere in them). Its seed-minima column is the mean of the per-seed "
    "improvements 1 − BIV seed min / L2 seed min."
)


def blocks(block: dict, reference: dict, summary: pd.DataFrame) -> list[tuple[str, object]]:
    """The report's content as (kind, value) blocks: h1, h2, p (text) and table (DataFrame)."""
    tolerance = reference.get("tolerance", 0.01)
    out: list[tuple[str, object]] = [
        ("h1", "Reproduction of Mai, Khamies & Paull (2021)"),
        (
            "p",
            f"Reference values: {reference.get('source', '')}, each uncertain by ±{tolerance}: "
            "the paper's column gives the value with its read-off range, and a row is "
            "consistent when that range and our 95 % interval overlap.",
        ),
        ("p", DEFINITIONS),
        ("p", INTERVALS),
        ("p", IMPROVEMENT),
    ]
    if block.get("note"):
        out.append(("p", f"Setting: {block['note']}"))
    for name, panel in block["panels"].items():
        ref = reference["panels"].get(name, {})
        out += [
            ("h2", ref.get("title", name)),
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
