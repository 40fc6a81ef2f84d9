"""Snakemake glue: one training run from the rule's run parameters (the run writes them as
params.json when it ends; a killed job leaves no output behind, only its checkpoint).

A checkpoint left by a killed attempt resumes the run; one the run cannot use (written before a
config edit, or damaged) is deleted with a line in the job's log, and training starts afresh."""

import os

import torch

from biv import logs
from biv.spec import RunSpec
from biv.train import train

logs.setup(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
train(
    RunSpec.from_dict(snakemake.params.run),
    os.path.dirname(snakemake.output.summary),
    discard_unusable_checkpoint=True,
)
