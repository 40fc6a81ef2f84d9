"""Snakemake glue: one learning-curve figure."""

import pandas as pd

from biv import aggregate, logs, plots
from biv.spec.figures import Figure

logs.setup(snakemake.log[0])
curves = aggregate.read_curves(snakemake.input.metrics)
runs = pd.read_csv(snakemake.input.runs)
batch_sizes = runs.groupby("experiment")["batch_size"].first().to_dict()
out = snakemake.output
figure = Figure.from_dict(snakemake.params.figure)  # checked at plan time, trusted here
plots.learning_curves(figure, curves, batch_sizes, out.png, out.pdf)
