"""Snakemake glue: one learning-curve figure."""

import pandas as pd

from biv import aggregate, logs, plots

logs.setup(snakemake.log[0])
curves = aggregate.read_curves(snakemake.input.metrics)
runs = pd.read_csv(snakemake.input.runs)
batch_sizes = runs.groupby("experiment")["batch_size"].first().to_dict()
out = snakemake.output
plots.learning_curves(
    snakemake.params.figure, curves, batch_sizes, out.png, out.pdf, snakemake.wildcards.figure
)
