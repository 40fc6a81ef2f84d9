"""Snakemake glue: the per-run table, and the per-(experiment, loss) summary table (CSV and an
HTML rendering for the report). The runs' files, and what run each is, are params (the inputs
are the packs' output folders)."""

from biv import atomic, logs
from biv.report import html, tables

logs.setup(snakemake.log[0])
params = snakemake.params
runs = tables.runs_table(params.summary_files, params.params_files, params.experiments)
atomic.write_text(snakemake.output.runs, runs.to_csv(index=False))
curves = tables.read_curves(params.metrics_files, params.runs)
predictions = tables.read_noisy_predictions(
    params.predictions_files, params.params_files, params.run_files, params.runs
)
summary = tables.summary_table(curves, params.experiments, params.sweeps, runs, predictions)
atomic.write_text(snakemake.output.summary, summary.to_csv(index=False))
atomic.write_text(snakemake.output.summary_html, html.summary_html(summary))
