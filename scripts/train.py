"""Snakemake glue: one pack of training runs from the rule's member run parameters, each run's
folder seed{s}/ in the output folder. The members write into {pack}.partial beside the output
folder, renamed to it when the pack ends (and deleted when training fails or stops): a killed job
leaves no output behind (no --rerun-incomplete needed), only the pack's checkpoint, in
params.checkpoint_dir (outside the output folder, which Snakemake deletes before a rerun).

A checkpoint left by a killed attempt resumes the pack; one it cannot use (written before a config
edit, or damaged) is deleted with a line in the job's log, and training starts afresh."""

import contextlib
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
partial = output.with_name(output.name + ".partial")
shutil.rmtree(partial, ignore_errors=True)  # left by a killed attempt
checkpoint_dir = Path(snakemake.params.checkpoint_dir)
checkpoint_dir.mkdir(parents=True, exist_ok=True)
try:
    train_pack(
        runs,
        [member_dir(partial, run.seed) for run in runs],
        checkpoint_dir,
        discard_unusable_checkpoint=True,
    )
except BaseException:  # failed or stopped: the checkpoint, if any, resumes; no half pack stays
    shutil.rmtree(partial, ignore_errors=True)
    raise
partial.rename(output)
with contextlib.suppress(OSError):  # the pack deleted its checkpoint when it ended
    checkpoint_dir.rmdir()
