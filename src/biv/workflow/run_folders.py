"""Where a run's files lie in the output folder of the train job of its pack (torch-free: the
rules plan with it, and scripts/train.py writes there)."""

from __future__ import annotations

from pathlib import Path

#: The files of a run folder, by the name the rules give them.
RUN_FILES = {
    "params": "params.json",
    "summary": "summary.json",
    "metrics": "metrics.csv",
    "predictions": "predictions.csv",
    "run": "run.json",
}


def member_dir(pack_dir: str | Path, seed: int) -> Path:
    """The run folder of the member with ``seed`` in a pack's output folder."""
    return Path(pack_dir) / f"seed{seed}"


def member_file(pack_dir: str | Path, seed: int, name: str) -> str:
    """The file ``name`` (a key of :data:`RUN_FILES`) of the member with ``seed``."""
    return str(member_dir(pack_dir, seed) / RUN_FILES[name])
