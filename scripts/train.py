"""Snakemake glue: one training run from the rule's run parameters, kept as params.json once it
has ended (a killed job leaves no output behind, only its checkpoint).

A checkpoint left by a killed attempt resumes the run; one the run cannot use (written before a
config edit, or damaged) is deleted with a line in the job's log, and training starts afresh."""

import os

import torch

from biv import atomic, logs
from biv.spec import RunSpec
from biv.train import train

logs.setup(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
run = RunSpec.from_dict(snakemake.params.run)
train(run, os.path.dirname(snakemake.output.summary), discard_unusable_checkpoint=True)
atomic.write_json(snakemake.output.params, run.to_dict())
