"""The prepared file: split, train-split statistics, assembly, atomic write and loading.

Layout: one uncompressed ``numpy.savez`` archive (written without torch, so preparing a dataset
costs its work, not a torch start), which :func:`load_prepared` returns as a dict of tensors:

- ``x_train``/``x_test``: float32 (N, F) raw features, or uint8 (N, 3, H, W) images;
- ``y_train``/``y_test``: float32 (N,) clean labels in raw units;
- ``x_mean``/``x_std``: float32 (F,), or (3,) per channel in [0, 1] pixel units;
  ``y_mean``/``y_std``: python floats; all from the train split only (population std, 0 -> 1);
- ``train_index``/``test_index``: int64 (N,), each sample's record number in the source
  (documented per kind in ``meta["index"]``);
- ``meta``: str/int/float/bool/list/dict only (stored as JSON text);
- a table with a variance column also ``y_noisy_train``/``var_train`` (and ``var_test``).
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from biv import atomic
from biv.data.local import check_split
from biv.provenance import provenance

PREPROCESSING_VERSION = 1


def split_indices(
    name: str, n_total: int, n_train: int, n_test: int, seed: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of ``n_total`` records: ``perm = default_rng(seed).permutation(n_total)``;
    train = ``perm[:n_train]``, test = ``perm[-n_test:]`` (so the test set does not depend on
    train_size). ``what`` names the data in the error raised when they do not fit."""
    check_split(name, n_total, n_train, n_test, what)
    perm = np.random.default_rng(seed).permutation(n_total)
    return perm[:n_train], perm[n_total - n_test :]


def feature_stats(x_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and population std (float64 sums, stored float32; std 0 -> 1)."""
    mean = x_train.mean(axis=0, dtype=np.float64)
    std = x_train.std(axis=0, dtype=np.float64)
    std[std == 0] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def assemble(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    train_index: np.ndarray,
    test_index: np.ndarray,
    meta: dict[str, Any],
    x_stats: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """The prepared dict (numpy arrays); label stats from the train split.

    ``meta`` must hold the validated ``config``; its None values are left out (meta holds only
    str/int/float/bool/list/dict)."""
    x_mean, x_std = x_stats if x_stats is not None else feature_stats(x_train)
    y = y_train.astype(np.float64)
    y_std = float(y.std())
    return {
        "x_train": x_train,
        "y_train": y_train.astype(np.float32),
        "x_test": x_test,
        "y_test": y_test.astype(np.float32),
        "x_mean": x_mean,
        "x_std": x_std,
        "y_mean": float(y.mean()),
        "y_std": y_std if y_std > 0 else 1.0,
        "train_index": np.asarray(train_index, dtype=np.int64),
        "test_index": np.asarray(test_index, dtype=np.int64),
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
    """Write ``prepared`` (arrays or CPU tensors, float ``y_mean``/``y_std``, a ``meta`` dict)
    atomically (temporary file beside ``out_path``, renamed on success)."""
    arrays = {k: np.asarray(v) for k, v in prepared.items() if k != "meta"}
    arrays["meta"] = np.array(json.dumps(prepared["meta"]))
    atomic.write_npz(out_path, arrays)


def load_prepared(path: str | os.PathLike) -> dict[str, Any]:
    """Load a prepared file: its arrays as CPU tensors, ``y_mean``/``y_std`` as floats, ``meta``
    as a dict."""
    import torch  # imported here: preparing a dataset needs no torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prepared data file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
        if not all(isinstance(value, np.ndarray) for value in arrays.values()):
            raise ValueError("members that are not .npy arrays")
        scalars = {"y_mean": float(arrays["y_mean"]), "y_std": float(arrays["y_std"])}
        meta = json.loads(str(arrays["meta"]))
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as err:
        raise ValueError(
            f"prepared data file {path} is not an archive of biv.data.prepare ({err!r})"
        ) from None
    prepared = {k: torch.from_numpy(v) for k, v in arrays.items() if v.ndim}
    return prepared | scalars | {"meta": meta}


def train_labels(path: str | os.PathLike) -> np.ndarray:
    """The training labels of a prepared file (float32, as training reads them), without torch
    or the other arrays."""
    with np.load(path, allow_pickle=False) as archive:
        return archive["y_train"].astype(np.float32)


def label_std(path: str | os.PathLike) -> float:
    """The train-split label std of a prepared file, without reading its arrays."""
    with np.load(path, allow_pickle=False) as archive:
        return float(archive["y_std"])


def label_stats(prepared: dict[str, Any]) -> dict[str, Any]:
    """The label statistics of a prepared dataset (train split), JSON-serializable."""
    return {
        "y_mean": float(prepared["y_mean"]),
        "y_std": float(prepared["y_std"]),
        "n_train": len(prepared["y_train"]),
        "n_test": len(prepared["y_test"]),
    }
