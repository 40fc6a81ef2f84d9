"""Snakemake glue: write the run-parameters file that `biv train` reads."""

from biv import io, logs

logs.setup(snakemake.log[0])
io.write_json(snakemake.output[0], snakemake.params.run)
