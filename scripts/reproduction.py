"""Snakemake glue: results/reproduction.md, our numbers beside the paper's."""

import pandas as pd
import yaml

from biv import io, logs, reproduction

logs.setup(snakemake.log[0])
with open(snakemake.input.reference) as f:
    reference = yaml.safe_load(f)
runs = pd.read_csv(snakemake.input.runs)
text = reproduction.report(
    snakemake.params.block, reference, runs, snakemake.input.figure, snakemake.output[0]
)
io.write_text(snakemake.output[0], text)
