"""Snakemake glue: the drawn label-noise variances of one (dataset, noise setting) as a figure and
its table (biv.report.plots.noise_variance_plot)."""

from biv import logs
from biv.noise.files import read_draw_file
from biv.report.figure_tables import noise_variance_table
from biv.report.plots import noise_variance_plot

logs.setup(snakemake.log[0])
variances = {}
for path in snakemake.input.draws:
    arrays = read_draw_file(path)
    variances |= dict(zip(arrays["seeds"].tolist(), arrays["var"], strict=True))
mean = arrays["setting"]["mean"]
marks = {f"μP (mean σ²) = {mean:g}": mean}
marks |= {f"cutoff threshold C = {t:g}": t for t in snakemake.params.thresholds}
dataset, noise = snakemake.wildcards.dataset, snakemake.wildcards.noise
noise_variance_plot(
    f"Label-noise variances σ², {dataset} / {noise}",
    noise_variance_table(variances),
    marks,
    snakemake.output.png,
    snakemake.output.pdf,
    snakemake.output.csv,
)
