"""Snakemake glue: the per-run table, and the per-(experiment, loss) summary table (CSV and an
HTML rendering for the report)."""

from biv import atomic, logs
from biv.report import html, tables

logs.setup(snakemake.log[0])
experiments = snakemake.params.experiments
runs = tables.runs_table(snakemake.input.summaries, snakemake.input.params, experiments)
atomic.write_text(snakemake.output.runs, runs.to_csv(index=False))
curves = tables.read_curves(snakemake.input.metrics)
summary = tables.summary_table(curves, experiments, snakemake.params.sweeps, runs)
atomic.write_text(snakemake.output.summary, summary.to_csv(index=False))
atomic.write_text(snakemake.output.summary_html, html.summary_html(summary))
