"""Atomic, resumable checkpoints of a training run: model, optimizer, RNG states and metrics."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from biv import atomic
from biv.metrics import RunMetrics
from biv.optim import Adam
from biv.spec import RunSpec


@dataclass
class Progress:
    """Where the loop stands: completed steps, the current epoch's permutation, elapsed time."""

    step: int = 0
    perm: torch.Tensor | None = None
    wall_time_s: float = 0.0


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
            "params": run.to_dict(),
            "step": progress.step,
            "perm": progress.perm,
            "wall_time_s": progress.wall_time_s,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "cuda": cuda, "shuffle": generator.get_state()},
            "metrics": metrics.state_dict(),
        },
    )


def load_checkpoint(
    path: Path,
    run: RunSpec,
    model: nn.Module,
    optimizer: Adam,
    generator: torch.Generator,
    device: torch.device,
) -> tuple[Progress, RunMetrics]:
    """Restore model, optimizer and RNG states; the checkpoint must be of the same parameters."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    params = run.to_dict()
    if state["params"] != params:
        differing = sorted(k for k in params if state["params"].get(k) != params[k])
        raise ValueError(
            f"checkpoint {str(path)!r} was written for other run parameters "
            f"(differing: {differing}); delete it or use another output folder"
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"]["torch"])
    if device.type == "cuda" and state["rng"]["cuda"] is not None:
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    generator.set_state(state["rng"]["shuffle"])
    progress = Progress(state["step"], state["perm"], state["wall_time_s"])
    return progress, RunMetrics.from_state_dict(state["metrics"], device)
