"""Snakemake glue: one pack of training runs from the rule's member run parameters. The members
write their folders into runs.partial beside the output folder, renamed to it when the pack ends:
a killed job leaves no output behind (no --rerun-incomplete needed), only the pack's checkpoint.

A checkpoint left by a killed attempt resumes the pack; one it cannot use (written before a config
edit, or damaged) is deleted with a line in the job's log, and training starts afresh."""

import shutil
from pathlib import Path

import torch

from biv import logs
from biv.config import RunSpec
from biv.train.loop import train_pack
from biv.workflow.run_folders import member_dir

logs.setup(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
runs = [RunSpec.from_dict(run) for run in snakemake.params.runs]
output = Path(snakemake.output.runs)
partial = output.with_name("runs.partial")
shutil.rmtree(partial, ignore_errors=True)  # left by a killed attempt
train_pack(
    runs,
    [member_dir(partial, run.seed) for run in runs],
    output.parent,
    discard_unusable_checkpoint=True,
)
partial.rename(output)
