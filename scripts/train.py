"""Snakemake glue: one training run from the rule's run parameters (also kept as params.json)."""

import os

import torch

from biv import atomic, logs
from biv.spec import RunSpec
from biv.train import train

logs.setup(snakemake.log[0])
run = RunSpec.from_dict(snakemake.params.run)
atomic.write_json(snakemake.output.params, run.to_dict())
torch.set_num_threads(snakemake.threads)
train(run, os.path.dirname(snakemake.output.summary))
