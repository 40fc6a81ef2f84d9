"""The reproduction report: our numbers beside the values read off the paper's figure."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from biv.aggregate import mean_ci


def _fmt(mean: float, low: float, high: float) -> str:
    if pd.isna(low):
        return f"{mean:.3f}"
    return f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def _paper(value) -> str:
    if isinstance(value, list):
        return f"{value[0]:.3f}–{value[1]:.3f}"
    return f"{value:.3f}"


def _within(ours: float, value, tolerance: float) -> str:
    low, high = (value, value) if not isinstance(value, list) else value
    return "yes" if low - tolerance <= ours <= high + tolerance else "no"


def panel_rows(panel: dict, reference: dict, runs: pd.DataFrame, tolerance: float) -> list[dict]:
    """Best L2, best BIV, best cutoff and the final no-noise L2: ours (mean and 95 % CI over
    seeds) against the paper's read-off values."""

    def scores(experiment: str, loss: str, score: str) -> pd.Series:
        rows = runs[(runs["experiment"] == experiment) & (runs["loss"] == loss)]
        if rows.empty:
            raise ValueError(f"reproduction: no runs of experiment {experiment!r}, loss {loss!r}")
        return rows[score]

    exp = panel["experiment"]
    measured = {
        ("best", "l2"): scores(exp, panel["l2"], "best_test_mse"),
        ("best", "biv"): scores(exp, panel["biv"], "best_test_mse"),
    }
    if panel["cutoffs"]:
        best_cutoff = min(panel["cutoffs"], key=lambda c: scores(exp, c, "best_test_mse").mean())
        measured[("best", "cutoff")] = scores(exp, best_cutoff, "best_test_mse")
    ref = panel["no_noise"]
    measured[("final", "no_noise_l2")] = scores(ref["experiment"], ref["loss"], "final_test_mse")
    rows = []
    for (kind, name), values in measured.items():
        mean, low, high = mean_ci(values)
        paper = reference.get(kind, {}).get(name)
        label = f"{kind} {name}" + (f" ({best_cutoff})" if name == "cutoff" else "")
        rows.append(
            {
                "curve": label,
                "paper": "–" if paper is None else _paper(paper),
                "ours (mean [95 % CI])": _fmt(mean, low, high),
                f"within ±{tolerance}": "–" if paper is None else _within(mean, paper, tolerance),
            }
        )
    return rows


def improvement(panel: dict, runs: pd.DataFrame) -> tuple[float, float, float, int]:
    """Relative improvement 1 − BIV/L2 of the best test MSE, paired by seed, with its CI."""
    exp = runs[runs["experiment"] == panel["experiment"]]
    l2 = exp[exp["loss"] == panel["l2"]].set_index("seed")["best_test_mse"]
    biv = exp[exp["loss"] == panel["biv"]].set_index("seed")["best_test_mse"]
    paired = (1 - biv / l2).dropna()
    return (*mean_ci(paired), len(paired))


def report(
    block: dict, reference: dict, runs: pd.DataFrame, figure: str | Path, out: str | Path
) -> str:
    """Markdown text of results/reproduction.md."""
    tolerance = reference.get("tolerance", 0.01)
    lines = [
        "# Reproduction of Mai, Khamies & Paull (2021)",
        "",
        f"Reference values: {reference.get('source', '')} (uncertainty ±{tolerance}).",
        "Scores are clean test MSE in normalized label units; ours are means over seeds with "
        "95 % Student-t intervals.",
    ]
    if block.get("note"):
        lines += ["", f"Setting: {block['note']}"]
    for name, panel in block["panels"].items():
        ref = reference["panels"].get(name, {})
        rows = pd.DataFrame(panel_rows(panel, ref, runs, tolerance))
        mean, low, high, n = improvement(panel, runs)
        lines += [
            "",
            f"## {ref.get('title', name)}",
            "",
            rows.to_markdown(index=False, disable_numparse=True),
            "",
        ]
        paper_best = ref.get("best", {})
        if "l2" in paper_best and "biv" in paper_best:
            paper_gain = 1 - paper_best["biv"] / paper_best["l2"]
            paper_text = f"paper ≈ {paper_gain:.1%}"
        else:
            paper_text = "paper: –"
        ci = "" if pd.isna(low) else f" (95 % CI {low:.1%} to {high:.1%})"
        lines.append(
            f"Relative improvement of BIV over L2 (best test MSE, paired over {n} seeds): "
            f"{mean:.1%}{ci}; {paper_text}."
        )
    rel = os.path.relpath(figure, Path(out).parent)
    lines += ["", "## Regenerated figure", "", f"![learning curves]({rel})", ""]
    return "\n".join(lines)
