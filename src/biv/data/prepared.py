"""The prepared file: split, train-split statistics, assembly, atomic write and loading.

Layout (one ``torch.save`` dict, loadable with ``torch.load(path, mmap=True, weights_only=True)``):

- ``x_train``/``x_test``: float32 (N, F) raw features, or uint8 (N, 3, H, W) images;
- ``y_train``/``y_test``: float32 (N,) clean labels in raw units;
- ``x_mean``/``x_std``: float32 (F,), or (3,) per channel in [0, 1] pixel units;
  ``y_mean``/``y_std``: python floats; all from the train split only (population std, 0 -> 1);
- ``train_index``/``test_index``: int64 (N,), each sample's record number in the source
  (documented per kind in ``meta["index"]``);
- ``meta``: str/int/float/bool/list/dict only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from biv import atomic
from biv.provenance import provenance

PREPROCESSING_VERSION = 1


def split_indices(
    name: str, n_total: int, n_train: int, n_test: int, seed: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of ``n_total`` records: ``perm = default_rng(seed).permutation(n_total)``;
    train = ``perm[:n_train]``, test = ``perm[-n_test:]`` (so the test set does not depend on
    train_size). ``what`` names the data in the error raised when they do not fit."""
    if n_train + n_test > n_total:
        raise ValueError(
            f"datasets.{name}: train_size {n_train} + test_size {n_test} = {n_train + n_test} "
            f"exceeds the {n_total} records of {what}"
        )
    perm = np.random.default_rng(seed).permutation(n_total)
    return perm[:n_train], perm[n_total - n_test :]


def feature_stats(x_train: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and population std (float64 sums, stored float32; std 0 -> 1)."""
    mean = x_train.mean(axis=0, dtype=np.float64)
    std = x_train.std(axis=0, dtype=np.float64)
    std[std == 0] = 1.0
    return torch.from_numpy(mean.astype(np.float32)), torch.from_numpy(std.astype(np.float32))


def assemble(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    train_index: np.ndarray,
    test_index: np.ndarray,
    meta: dict[str, Any],
    x_stats: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> dict[str, Any]:
    """The prepared dict. Arrays are wrapped without copying; label stats from the train split.

    ``meta`` must hold the validated ``config``; its None values are left out (meta holds only
    str/int/float/bool/list/dict)."""
    x_mean, x_std = x_stats if x_stats is not None else feature_stats(x_train)
    y = y_train.astype(np.float64)
    y_std = float(y.std())
    return {
        "x_train": torch.from_numpy(x_train),
        "y_train": torch.from_numpy(y_train.astype(np.float32)),
        "x_test": torch.from_numpy(x_test),
        "y_test": torch.from_numpy(y_test.astype(np.float32)),
        "x_mean": x_mean,
        "x_std": x_std,
        "y_mean": float(y.mean()),
        "y_std": y_std if y_std > 0 else 1.0,
        "train_index": torch.from_numpy(np.asarray(train_index, dtype=np.int64)),
        "test_index": torch.from_numpy(np.asarray(test_index, dtype=np.int64)),
        "meta": {
            **meta,
            "config": {k: v for k, v in meta["config"].items() if v is not None},
            "n_train": len(y_train),
            "n_test": len(y_test),
            "preprocessing_version": PREPROCESSING_VERSION,
            "provenance": provenance(),
        },
    }


def write(out_path: str | os.PathLike, prepared: dict[str, Any]) -> None:
    """Write atomically (temporary file beside ``out_path``, renamed on success)."""
    atomic.torch_save(out_path, prepared)


def load_prepared(path: str | os.PathLike, mmap: bool = True) -> dict[str, Any]:
    """Load a prepared file; with ``mmap`` the tensors are memory-mapped, not read."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prepared data file {path} does not exist")
    return torch.load(path, mmap=mmap, weights_only=True, map_location="cpu")


def label_stats(prepared: dict[str, Any]) -> dict[str, Any]:
    """The label statistics of a prepared dataset (train split), JSON-serializable."""
    return {
        "y_mean": float(prepared["y_mean"]),
        "y_std": float(prepared["y_std"]),
        "n_train": len(prepared["y_train"]),
        "n_test": len(prepared["y_test"]),
    }
