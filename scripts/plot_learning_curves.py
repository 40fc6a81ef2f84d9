"""Snakemake glue: one learning-curve figure."""

from biv import aggregate, logs, plots
from biv.spec.figures import Figure

logs.setup(snakemake.log[0])
curves = aggregate.read_curves(snakemake.input.metrics)
out = snakemake.output
figure = Figure.from_dict(snakemake.params.figure)  # checked at plan time, trusted here
plots.learning_curves(figure, curves, snakemake.params.batch_sizes, out.png, out.pdf)
