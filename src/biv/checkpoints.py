"""Atomic, resumable checkpoints of a training run: model, optimizer, RNG states and metrics.

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
from biv.metrics import RunMetrics
from biv.optim import Adam
from biv.spec import RunSpec


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from."""


@dataclass
class Progress:
    """Where the loop stands: completed steps, the current epoch's permutation, elapsed time."""

    step: int = 0
    perm: torch.Tensor | None = None
    wall_time_s: float = 0.0


def plain_params(run: RunSpec) -> dict:
    """The run's parameters as plain JSON types (no str subclasses, tuples or numpy scalars)."""
    return json.loads(json.dumps(run.to_dict()))


def save_checkpoint(
    path: Path,
    run: RunSpec,
    progress: Progress,
    model: nn.Module,
    optimizer: Adam,
    generator: torch.Generator,
    metrics: RunMetrics,
    device: torch.device,
) -> None:
    cuda = torch.cuda.get_rng_state_all() if device.type == "cuda" else None
    atomic.torch_save(
        path,
        {
            "params": plain_params(run),
            "step": progress.step,
            "perm": progress.perm,
            "wall_time_s": progress.wall_time_s,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "cuda": cuda, "shuffle": generator.get_state()},
            "metrics": metrics.state_dict(),
        },
    )


def _read(path: Path, run: RunSpec) -> dict:
    """The checkpoint's content, if it was written for exactly these parameters."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        written_for = state["params"]
    except Exception as err:  # a damaged file, or one of another format: all unusable alike
        raise CheckpointError(
            f"checkpoint {str(path)!r} cannot be read ({type(err).__name__}: {err})"
        ) from err
    params = plain_params(run)
    if written_for != params:
        differing = sorted(k for k in params if written_for.get(k) != params[k])
        raise CheckpointError(
            f"checkpoint {str(path)!r} was written for other run parameters "
            f"(differing: {differing})"
        )
    return state


def load_checkpoint(
    path: Path,
    run: RunSpec,
    model: nn.Module,
    optimizer: Adam,
    generator: torch.Generator,
    device: torch.device,
) -> tuple[Progress, RunMetrics]:
    """Restore model, optimizer and RNG states from a checkpoint of the same parameters.

    On ``CheckpointError`` the objects may be partly restored: start them afresh."""
    state = _read(path, run)
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"]["torch"])
        if device.type == "cuda" and state["rng"]["cuda"] is not None:
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        generator.set_state(state["rng"]["shuffle"])
        progress = Progress(state["step"], state["perm"], state["wall_time_s"])
        metrics = RunMetrics.from_state_dict(state["metrics"], device)
    except Exception as err:
        raise CheckpointError(
            f"checkpoint {str(path)!r} does not fit this run ({type(err).__name__}: {err})"
        ) from err
    return progress, metrics
