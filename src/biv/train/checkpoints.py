"""Atomic, resumable checkpoints of a pack of runs: model, optimizer, batch-order generators and
metrics.

A checkpoint holds plain data only (JSON types, numbers, tensors), so that it loads with
``torch.load(weights_only=True)`` whatever types the caller's parameters came in. One that
cannot be used (written for other parameters, damaged, of another version) raises
``CheckpointError``, naming the file and why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from biv import atomic
from biv.config import RunSpec
from biv.train.metrics import PackMetrics
from biv.train.optim import PackAdam


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from."""


@dataclass
class Progress:
    """Where the loop stands: completed steps, the current epoch's permutations (P, N),
    elapsed time; the signal that stopped the pack at ``step``, if one did."""

    step: int = 0
    perm: torch.Tensor | None = None
    wall_time_s: float = 0.0
    stopped_by: str | None = None


def plain_params(run: RunSpec) -> dict:
    """The run's parameters as plain JSON types (no str subclasses, tuples or numpy scalars)."""
    return json.loads(json.dumps(run.to_dict()))


def save_checkpoint(
    path: Path,
    runs: list[RunSpec],
    progress: Progress,
    model: nn.Module,
    optimizer: PackAdam,
    generators: list[torch.Generator],
    metrics: PackMetrics,
) -> None:
    atomic.torch_save(
        path,
        {
            "params": [plain_params(run) for run in runs],
            "step": progress.step,
            "perm": progress.perm,
            "wall_time_s": progress.wall_time_s,
            "stopped_by": progress.stopped_by,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "shuffle": [g.get_state() for g in generators],
            "metrics": metrics.state_dict(),
        },
    )


def _read(path: Path, runs: list[RunSpec]) -> dict:
    """The checkpoint's content, if it was written for exactly these runs' parameters."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        written_for = state["params"]
    except Exception as err:  # a damaged file, or one of another format: all unusable alike
        raise CheckpointError(
            f"checkpoint {str(path)!r} cannot be read ({type(err).__name__}: {err})"
        ) from err
    params = [plain_params(run) for run in runs]
    if not isinstance(written_for, list) or len(written_for) != len(params):
        raise CheckpointError(f"checkpoint {str(path)!r} was written for other runs")
    pairs = zip(written_for, params, strict=True)
    differing = sorted({k for old, new in pairs for k in new if old.get(k) != new[k]})
    if differing:
        raise CheckpointError(
            f"checkpoint {str(path)!r} was written for other run parameters "
            f"(differing: {differing})"
        )
    return state


def load_checkpoint(
    path: Path,
    runs: list[RunSpec],
    model: nn.Module,
    optimizer: PackAdam,
    generators: list[torch.Generator],
    device: torch.device,
) -> tuple[Progress, PackMetrics]:
    """Restore model, optimizer and generator states from a checkpoint of the same runs.

    On ``CheckpointError`` the objects may be partly restored: start them afresh."""
    state = _read(path, runs)
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        for generator, saved in zip(generators, state["shuffle"], strict=True):
            generator.set_state(saved)
        progress = Progress(
            state["step"], state["perm"], state["wall_time_s"], state.get("stopped_by")
        )
        metrics = PackMetrics.from_state_dict(state["metrics"], device)
    except Exception as err:
        raise CheckpointError(
            f"checkpoint {str(path)!r} does not fit this run ({type(err).__name__}: {err})"
        ) from err
    return progress, metrics
