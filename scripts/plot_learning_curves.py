"""Snakemake glue: one learning-curve figure (the runs' metrics files, and what run each is,
are params; the inputs are the packs' output folders)."""

from biv import logs
from biv.config.figures import Figure
from biv.report import plots, tables

logs.setup(snakemake.log[0])
params = snakemake.params
curves = tables.read_curves(params.metrics_files, params.runs)
out = snakemake.output
figure = Figure.from_dict(params.figure)  # checked at plan time, trusted here
plots.learning_curves(figure, curves, params.batch_sizes, out.png, out.pdf)
