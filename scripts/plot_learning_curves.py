"""Snakemake glue: one learning-curve figure and the per-seed figure of the same runs, each
with its table as CSV (the runs' metrics and summary files, and what run each is, are params;
the inputs are the packs' output folders)."""

from biv import logs
from biv.config.figures import Figure
from biv.report import figure_tables, plots, tables

logs.setup(snakemake.log[0])
params = snakemake.params
out = snakemake.output
figure = Figure.from_dict(params.figure)  # checked at plan time, trusted here
curves = tables.read_curves(params.metrics_files, params.runs)
table = figure_tables.learning_curve_table(figure, curves)
plots.learning_curves(figure, table, params.batch_sizes, out.png, out.pdf, out.csv)
scores = figure_tables.seed_scores(params.summary_files, params.runs)
seeds = figure_tables.seed_table(figure, scores)
plots.seed_plot(figure, seeds, out.seeds_png, out.seeds_pdf, out.seeds_csv)
