"""Inputs of the GPU check, made inside the working tree (the GPU machine has nothing else):
prepared datasets of synthetic features or images, a noise setting, the parameters of a pack's
runs, and batches for single steps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from biv.config.noise import resolve
from biv.data import prepare
from biv.data.prepared import assemble, train_labels, write
from biv.noise.files import write_draw_file

#: sigma^2 ~ U(0.05, 2) in raw label units (synthetic labels: std about 1.2)
NOISE = {"mode": "boundaries", "components": [{"a": 0.05, "b": 2.0}]}
#: keeps 13 % of the samples: about one batch of 16 in nine has none (a skipped step)
CUTOFF = {"type": "cutoff", "threshold": 0.3}
LOSSES = [
    ("l2", {"type": "mse"}),
    ("iv", {"type": "iv", "epsilon": 0.1}),
    ("biv", {"type": "biv", "epsilon": 0.1}),
    ("cutoff", CUTOFF),
]
MLP = {"name": "mlp", "hidden": [32, 16], "batchnorm": True}
#: as Bike's MLP, without BatchNorm: with it, Adam turns the round-off of the bias gradients
#: before a BatchNorm (exactly 0 in exact arithmetic) into steps of size lr, so that float32 and
#: float64 runs drift ~1e-3 apart in two epochs (~1e-7 without)
MLP_NO_BN = MLP | {"batchnorm": False}


def features(work: Path, n_train: int, n_test: int, n_features: int = 8) -> Path:
    """A prepared file of the embedded synthetic data set (``biv.data.synthetic``)."""
    path = work / f"features-{n_train}-{n_test}-{n_features}.npz"
    if not path.exists():
        cfg = {"n_train": n_train, "n_test": n_test, "n_features": n_features, "seed": 0}
        prepare(path.stem, {"kind": "synthetic", **cfg}, path)
    return path


def images(work: Path, n_train: int, n_test: int, side: int) -> Path:
    """A prepared file of random uint8 images whose label (an "age" of mean 40) is a function of
    their mean colours."""
    path = work / f"images-{n_train}-{n_test}-{side}.npz"
    if path.exists():
        return path
    n = n_train + n_test
    x = np.random.default_rng(0).integers(0, 256, (n, 3, side, side), dtype=np.uint8)
    colour = x.mean(axis=(2, 3), dtype=np.float64) / 255
    y = 40 + 200 * (colour[:, 0] - colour[:, 2])
    pixels = x[:n_train].transpose(1, 0, 2, 3).reshape(3, -1) / 255
    stats = (pixels.mean(1).astype(np.float32), pixels.std(1).astype(np.float32))
    meta = {"dataset": path.stem, "kind": "synthetic images", "config": {"side": side}}
    index = np.arange(n)
    train, test = slice(0, n_train), slice(n_train, n)
    prepared = assemble(
        x[train], y[train], x[test], y[test], index[train], index[test], meta, x_stats=stats
    )
    write(path, prepared)
    return path


def noise_draws(work: Path, data: Path) -> Path:
    """The noise-draw file of seeds 0-20 for the training labels of ``data``."""
    path = work / f"{data.stem}-noise.npz"
    write_draw_file(path, train_labels(data), resolve(NOISE).to_dict(), range(21))
    return path


def pack_runs(data: Path, noise: Path, model: dict, training: dict, losses=LOSSES, seeds=(1,)):
    """The parameters of a pack (``biv.train.loop.train_pack``): every loss of ``losses`` for each
    seed, on ``data`` with noisy labels drawn from ``noise``."""
    return [
        {
            "experiment": "gpu-check",
            "loss_name": name,
            "seed": seed,
            "dataset": {"name": data.stem, "file": str(data)},
            "noise": {"name": "uniform", "file": str(noise)},
            "loss": loss,
            "model": model,
            "training": {"checkpoint_every": 0, **training},
        }
        for seed in seeds
        for name, loss in losses
    ]


class StepData:
    """What a pack's steps need of ``biv.train.run_data.RunData``: test labels, and model
    inputs from a batch (uint8 images: /255, then the fixed per-channel normalization below)."""

    def __init__(self, y_test: torch.Tensor, images: bool):
        self.y_test, self.images = y_test, images

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        if not self.images:
            return x
        return x.to(self.y_test.dtype).div(255.0).sub(0.45).div(0.25)


def batch(shape: tuple[int, ...], members: int, rows: int, seed: int = 0):
    """Inputs (rows, *shape) (uint8 for images), labels and variances (members, rows) on the
    CPU, float64: the same draws for every dtype and device they are moved to."""
    gen = torch.Generator().manual_seed(seed)
    if len(shape) == 3:
        x = torch.randint(0, 256, (rows, *shape), generator=gen, dtype=torch.uint8)
    else:
        x = torch.randn(rows, *shape, generator=gen, dtype=torch.float64)
    y = torch.randn(members, rows, generator=gen, dtype=torch.float64)
    var = 0.1 + 1.9 * torch.rand(members, rows, generator=gen, dtype=torch.float64)
    return x, y, var
