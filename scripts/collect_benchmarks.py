"""Snakemake glue: every job's benchmark file in one table."""

from biv import atomic, logs
from biv.report import tables

logs.setup(snakemake.log[0])
table = tables.benchmarks_table(snakemake.input, snakemake.params.root, snakemake.params.runs)
atomic.write_text(snakemake.output[0], table.to_csv(index=False))
