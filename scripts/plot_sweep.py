"""Snakemake glue: best test MSE against the swept value(s) of one sweep."""

import pandas as pd

from biv import logs, plots

logs.setup(snakemake.log[0])
runs = pd.read_csv(snakemake.input.runs)
out = snakemake.output
plots.sweep_plot(snakemake.params.sweep, runs, out.png, out.pdf)
