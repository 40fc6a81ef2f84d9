"""Snakemake glue: download one publisher zip (a local job: the submit host has network) and
record what was checked."""

from biv import atomic, logs
from biv.config.dataset import parse
from biv.data.sources import download

logs.setup(snakemake.log[0])
datasets = {name: parse(name, cfg) for name, cfg in snakemake.params.datasets.items()}
atomic.write_json(snakemake.output[0], download(datasets, snakemake.params.download_dir))
