"""Snakemake glue: resolved config, package versions and git commit beside the results."""

from biv import atomic, logs, provenance

logs.setup(snakemake.log[0])
record = {"config": snakemake.params.config, **provenance.provenance()}
atomic.write_json(snakemake.output[0], record)
