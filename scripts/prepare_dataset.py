"""Snakemake glue: prepare one dataset into its tensor file."""

from biv import data, logs

logs.setup(snakemake.log[0])
data.prepare(
    snakemake.wildcards.dataset,
    snakemake.params.cfg,
    snakemake.output[0],
    snakemake.params.download_dir,
    workers=snakemake.threads,
)
