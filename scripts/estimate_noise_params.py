"""Snakemake glue: resolve one noise setting into its parameter record."""

from biv import io, logs, params

logs.setup(snakemake.log[0])
io.write_json(snakemake.output[0], params.resolve(snakemake.params.setting))
