"""Snakemake glue: prepare one dataset into its tensor file, without network (the download job
fetched its zip).

The download cache is read from the config, not passed as a rule parameter: moving the cache
(`--config download_dir=...`) is not a change of the data, and reruns no preparation."""

from biv import data, logs

logs.setup(snakemake.log[0])
data.prepare(
    snakemake.wildcards.dataset,
    snakemake.params.cfg,
    snakemake.output.data,
    snakemake.config["download_dir"],
    workers=snakemake.threads,
    stats_path=snakemake.output.stats,
    network=False,
)
