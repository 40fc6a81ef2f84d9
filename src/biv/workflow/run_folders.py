"""Where a pack's members lie in the train rule's output folder, and how a run folder is made
from them: ``python -m biv.workflow.run_folders RUNS_DIR SEED LOG OUTPUT...`` (the run_folder
rule; torch-free, it starts in a tenth of a second, where a ``run:`` job would be a new
Snakemake process)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def member_dir(runs_dir: str | Path, seed: int) -> Path:
    """The folder of the member with ``seed`` in a pack's ``runs`` folder."""
    return Path(runs_dir) / f"seed{seed}"


def link_run_files(runs_dir: str | Path, seed: int, outputs, log: str | Path) -> None:
    """Each of ``outputs`` as a hard link of the member file of the same name (a copy where the
    file system cannot link, said in ``log``), then touched: newer than the pack's folder, which
    Snakemake timestamps when the train job ends."""
    source = member_dir(runs_dir, seed)
    lines = []
    for output in map(Path, outputs):
        output.parent.mkdir(parents=True, exist_ok=True)
        output.unlink(missing_ok=True)
        try:
            os.link(source / output.name, output)
            lines.append(f"{output}: hard link of {source / output.name}")
        except OSError as err:
            shutil.copyfile(source / output.name, output)
            lines.append(f"{output}: copy of {source / output.name} (no hard link: {err})")
        os.utime(output)
    Path(log).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    runs_dir, seed, log, *outputs = sys.argv[1:]
    link_run_files(runs_dir, int(seed), outputs, log)
