"""Snakemake glue: one sweep figure (the paper's best test loss and the improvement over L2
against the swept values), from the summary table."""

import pandas as pd

from biv import logs
from biv.report import plots

logs.setup(snakemake.log[0])
summary = pd.read_csv(snakemake.input.summary, keep_default_na=False, na_values=[""])
out = snakemake.output
plots.sweep_plot(snakemake.params.sweep, summary, out.png, out.pdf)
