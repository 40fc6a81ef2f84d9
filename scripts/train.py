"""Snakemake glue: one pack of training runs from the rule's member run parameters (each member
writes its files, params.json last, into its folder when the pack ends; a killed job leaves no
output behind, only the pack's checkpoint beside its output folder).

A checkpoint left by a killed attempt resumes the pack; one it cannot use (written before a config
edit, or damaged) is deleted with a line in the job's log, and training starts afresh."""

from pathlib import Path

import torch

from biv import logs
from biv.packs import member_dir
from biv.spec import RunSpec
from biv.train import train_pack

logs.setup(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
runs = [RunSpec.from_dict(run) for run in snakemake.params.runs]
train_pack(
    runs,
    [member_dir(snakemake.output.runs, run.seed) for run in runs],
    Path(snakemake.output.runs).parent,
    discard_unusable_checkpoint=True,
)
