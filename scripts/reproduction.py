"""Snakemake glue: results/reproduction.md (and .html), the paper-defined numbers beside the
paper's."""

import pandas as pd

from biv import atomic, logs
from biv.config.reproduction import read_reference
from biv.report import reproduction

logs.setup(snakemake.log[0])
reference = read_reference(snakemake.input.reference)
summary = pd.read_csv(snakemake.input.summary, keep_default_na=False, na_values=[""])
block = snakemake.params.block
out = snakemake.output
atomic.write_text(
    out.md, reproduction.report(block, reference, summary, snakemake.input.figure, out.md)
)
atomic.write_text(out.html, reproduction.report_html(block, reference, summary))
