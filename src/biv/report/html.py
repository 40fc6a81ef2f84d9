"""HTML views of the tables: the summary as a page a reader opens from ``snakemake --report``."""

from __future__ import annotations

import pandas as pd

from biv.report.tables import SUMMARY_COLUMNS


def _cell(row: pd.Series, name: str, mean_key: str | None = None, percent: bool = False) -> str:
    mean = row[mean_key or name]
    low, high = row[f"{name}_ci_low"], row[f"{name}_ci_high"]
    if pd.isna(mean):
        return "–"
    fmt = "{:.1%}" if percent else "{:.4g}"
    text = fmt.format(mean)
    return text if pd.isna(low) else f"{text} [{fmt.format(low)}, {fmt.format(high)}]"


def summary_html(summary: pd.DataFrame) -> str:
    """summary.csv as a readable HTML page (value [95 % interval] per cell) with the column
    definitions, for the Snakemake report."""
    table = pd.DataFrame(
        {
            "experiment": summary["experiment"],
            "loss": summary["loss"],
            "metric": summary["metric"],
            "seeds": summary["n_seeds"],
            "min of mean curve (paper's best) [t CI at its step]": [
                _cell(r, "min_of_mean_curve") for _, r in summary.iterrows()
            ],
            "at step": summary["min_of_mean_curve_step"],
            "final of mean curve [t CI]": [
                _cell(r, "final_of_mean_curve") for _, r in summary.iterrows()
            ],
            "mean of seed minima [t CI]": [
                _cell(r, "mean_of_seed_mins") for _, r in summary.iterrows()
            ],
            "baseline": [
                f"{r['baseline_experiment']}/{r['baseline']}" if r["baseline"] else "–"
                for _, r in summary.iterrows()
            ],
            "improvement, paper's definition [paired t CI]": [
                _cell(r, "rel_improvement_of_min_of_mean_curve", percent=True)
                for _, r in summary.iterrows()
            ],
            "mean of per-seed improvements [t CI]": [
                _cell(r, "mean_of_seed_rel_improvements", percent=True)
                for _, r in summary.iterrows()
            ],
            "paired diff. of seed minima [t CI]": [
                _cell(r, "paired_diff_of_seed_mins", "paired_diff_of_seed_mins_mean")
                for _, r in summary.iterrows()
            ],
        }
    )
    definitions = "".join(
        f"<dt><code>{name}</code></dt><dd>{text}</dd>" for name, text in SUMMARY_COLUMNS.items()
    )
    return html_page(
        "Summary: clean test MSE per experiment and loss",
        "<p>Clean test MSE in normalized label units (metric <code>mse</code>), or, for test "
        "labels with known noise variances, its estimate (<code>clean_mse_est</code>: the MSE "
        "against the noisy labels minus their mean variance). The <em>mean curve</em> is the "
        "mean over "
        "seeds of the learning curves at each evaluation step; the paper's best is its lowest "
        "point, the paper's improvement over L2 is 1 - min(mean curve) / min(mean L2 curve).</p>"
        + table.to_html(index=False, border=0)
        + f"<h2>Columns of summary.csv</h2><dl>{definitions}</dl>",
    )


def html_page(title: str, body: str) -> str:
    """A small self-contained HTML page (for tables shown in the Snakemake report)."""
    style = (
        "body{font-family:sans-serif;font-size:14px;margin:1em}"
        "table{border-collapse:collapse;margin:0.5em 0}"
        "th,td{border:1px solid #ccc;padding:3px 6px;text-align:left}"
        "th{background:#f0f0f0}dt{font-weight:bold;margin-top:0.3em}"
    )
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{style}</style></head><body><h1>{title}</h1>{body}</body></html>\n"
    )
