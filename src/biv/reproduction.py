"""The reproduction report: the paper-defined numbers (from summary.csv) beside the values read
off the paper's figure, as Markdown (results/reproduction.md) and HTML (for the report)."""

from __future__ import annotations

import html
import os
from pathlib import Path

import pandas as pd

from biv.aggregate import N_BOOTSTRAP, html_page

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


def _paper(value) -> str:
    if isinstance(value, list):
        return f"{value[0]:.3f}–{value[1]:.3f}"
    return f"{value:.3f}"


def _within(ours: float, value, tolerance: float) -> str:
    low, high = (value, value) if not isinstance(value, list) else value
    return "yes" if low - tolerance <= ours <= high + tolerance else "no"


def _row(summary: pd.DataFrame, experiment: str, loss: str) -> pd.Series:
    rows = summary[(summary["experiment"] == experiment) & (summary["loss"] == loss)]
    if rows.empty:
        raise ValueError(f"reproduction: no runs of experiment {experiment!r}, loss {loss!r}")
    return rows.iloc[0]


def panel_rows(panel: dict, reference: dict, summary: pd.DataFrame, tolerance: float) -> list:
    """Best L2, best BIV, best cutoff (each the minimum of the mean curve) and the final point
    of the no-noise L2 mean curve: ours beside the paper's read-off values."""
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
        paper = reference.get(kind, {}).get(name)
        if kind == "best":
            what = f"best {DISPLAY[name]} ({loss}): min of mean curve"
            ours = row["min_of_mean_curve"]
            text = _fmt(ours, row["min_of_mean_curve_ci_low"], row["min_of_mean_curve_ci_high"])
            step = row["min_of_mean_curve_step"]
            seed_mins = _fmt(
                row["mean_of_seed_mins"],
                row["mean_of_seed_mins_ci_low"],
                row["mean_of_seed_mins_ci_high"],
            )
        else:
            what = f"no-noise L2 ({ref['experiment']}/{loss}): final of mean curve"
            ours = row["final_of_mean_curve"]
            low, high = row["final_of_mean_curve_ci_low"], row["final_of_mean_curve_ci_high"]
            text, step, seed_mins = _fmt(ours, low, high), row["final_of_mean_curve_step"], "–"
        rows.append(
            {
                "quantity": what,
                "paper": "–" if paper is None else _paper(paper),
                "ours, paper's definition [95 % CI]": text,
                "at step": str(int(step)),
                f"within ±{tolerance}": "–" if paper is None else _within(ours, paper, tolerance),
                "ours, mean of seed minima [95 % CI] (not the paper's)": seed_mins,
                "seeds": str(int(row["n_seeds"])),
            }
        )
    return rows


def improvement_text(panel: dict, reference: dict, summary: pd.DataFrame) -> str:
    """BIV's relative improvement over L2, the paper's definition first, then the mean of the
    per-seed improvements, and the paper's value derived from its read-off bests."""
    row = _row(summary, panel["experiment"], panel["biv"])
    if row["baseline"] != panel["l2"] or row["baseline_experiment"] != panel["experiment"]:
        raise ValueError(
            f"reproduction: the summary compares {panel['experiment']}/{panel['biv']} with "
            f"{row['baseline_experiment']}/{row['baseline']}, not with {panel['l2']}: make "
            f"{panel['l2']!r} the experiment's baseline"
        )
    name = "rel_improvement_of_min_of_mean_curve"
    paper_def = _fmt(row[name], row[f"{name}_ci_low"], row[f"{name}_ci_high"], percent=True)
    name = "mean_of_seed_rel_improvements"
    per_seed = _fmt(row[name], row[f"{name}_ci_low"], row[f"{name}_ci_high"], percent=True)
    best = reference.get("best", {})
    if "l2" in best and "biv" in best:
        paper = f"paper ≈ {1 - best['biv'] / best['l2']:.1%} (from its read-off best values)"
    else:
        paper = "paper: –"
    return (
        f"BIV's improvement over L2, paper's definition (1 − min mean BIV curve / min mean L2 "
        f"curve, paired over {int(row['n_paired'])} seeds): **{paper_def}**; {paper}. "
        f"Mean of the per-seed improvements 1 − BIV seed min / L2 seed min (not the paper's "
        f"definition): {per_seed}."
    )


def blocks(block: dict, reference: dict, summary: pd.DataFrame) -> list[tuple[str, object]]:
    """The report's content as (kind, value) blocks: h1, h2, p (text) and table (DataFrame)."""
    tolerance = reference.get("tolerance", 0.01)
    out: list[tuple[str, object]] = [
        ("h1", "Reproduction of Mai, Khamies & Paull (2021)"),
        ("p", f"Reference values: {reference.get('source', '')} (uncertainty ±{tolerance})."),
        ("p", DEFINITIONS),
        ("p", INTERVALS),
    ]
    if block.get("note"):
        out.append(("p", f"Setting: {block['note']}"))
    for name, panel in block["panels"].items():
        ref = reference["panels"].get(name, {})
        out += [
            ("h2", ref.get("title", name)),
            ("table", pd.DataFrame(panel_rows(panel, ref, summary, tolerance))),
            ("p", improvement_text(panel, ref, summary)),
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
