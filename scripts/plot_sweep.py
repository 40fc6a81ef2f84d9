"""Snakemake glue: one sweep figure (the paper's best test loss and the improvement over L2
against the swept values, or as heatmaps for two swept keys) and its table as CSV, from the
summary table."""

import pandas as pd

from biv import logs
from biv.report import figure_tables, plots

logs.setup(snakemake.log[0])
summary = pd.read_csv(snakemake.input.summary, keep_default_na=False, na_values=[""])
out = snakemake.output
table = figure_tables.sweep_table(snakemake.params.sweep, summary)
plots.sweep_plot(snakemake.params.sweep, table, out.png, out.pdf, out.csv)
