"""Snakemake glue: the per-run table and the per-(experiment, loss) summary table."""

from biv import aggregate, io, logs

logs.setup(snakemake.log[0])
experiments = snakemake.params.experiments
runs = aggregate.runs_table(snakemake.input.summaries, snakemake.input.params, experiments)
io.write_text(snakemake.output.runs, runs.to_csv(index=False))
summary = aggregate.summary_table(runs, experiments)
io.write_text(snakemake.output.summary, summary.to_csv(index=False))
