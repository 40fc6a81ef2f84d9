"""Snakemake glue: one learning-curve figure."""

from biv import logs, plots

logs.setup(snakemake.log[0])
curves = plots.read_curves(snakemake.input.metrics)
out = snakemake.output
plots.learning_curves(snakemake.params.figure, curves, out.png, out.pdf)
