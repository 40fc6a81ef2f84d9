"""Snakemake glue: one learning-curve figure."""

from biv import logs
from biv.config.figures import Figure
from biv.report import plots, tables

logs.setup(snakemake.log[0])
curves = tables.read_curves(snakemake.input.metrics)
out = snakemake.output
figure = Figure.from_dict(snakemake.params.figure)  # checked at plan time, trusted here
plots.learning_curves(figure, curves, snakemake.params.batch_sizes, out.png, out.pdf)
