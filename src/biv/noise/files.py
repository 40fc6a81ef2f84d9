"""The noise-draw file of one (dataset, noise setting, block of seeds): every seed's draw for
the training labels (:func:`biv.noise.draws.draw`), written by the noise-draw job and read by
the training jobs, which never draw (numpy only).

One uncompressed ``numpy.savez`` archive: ``seeds`` (S,), and per seed (S, N): ``y_noisy`` (the
noisy labels), ``var`` (sigma^2), ``var_seen`` (the variance the loss sees), ``component``
(int8); ``setting``: the resolved setting's record (JSON text); ``dataset``, ``noise``: names.
Beside it, a summary per seed (:func:`summary`).
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Iterable, Sequence

import numpy as np

from biv import atomic
from biv.config.noise import NoiseSpec
from biv.noise.draws import NoiseDraw, draw

PER_SEED = NoiseDraw._fields


def write_draw_file(
    path: str | os.PathLike,
    y_train: np.ndarray,
    record: dict,
    seeds: Sequence[int],
    **names: str,
) -> None:
    """Draw the noisy labels of ``y_train`` for each of ``seeds`` from the setting ``record`` (a
    resolved setting's ``to_dict``) and write them to ``path`` atomically, with ``names``
    (dataset, noise)."""
    setting = NoiseSpec.from_dict(record)
    draws = [draw(y_train, setting, seed) for seed in seeds]
    arrays = {key: np.stack([getattr(d, key) for d in draws]) for key in PER_SEED}
    arrays["seeds"] = np.asarray(seeds, dtype=np.int64)
    arrays["setting"] = np.array(json.dumps(record))
    arrays |= {key: np.array(value) for key, value in names.items()}
    atomic.write_npz(path, arrays)


def read_draw_file(path: str | os.PathLike) -> dict:
    """Every array of a draw file, ``setting`` as a dict; ValueError saying what is wrong when it
    is not one."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile):
        raise ValueError("not a .npz archive") from None
    missing = sorted({"seeds", "setting", *PER_SEED} - set(arrays))
    if missing:
        raise ValueError(f"an archive without {', '.join(missing)}")
    arrays["setting"] = json.loads(str(arrays["setting"]))
    return arrays


def seed_draw(arrays: dict, seed: int) -> NoiseDraw:
    """The draw of ``seed`` in a draw file's ``arrays`` (:func:`read_draw_file`)."""
    found = np.flatnonzero(arrays["seeds"] == seed)
    if not len(found):
        seeds = ", ".join(str(s) for s in arrays["seeds"])
        raise ValueError(f"no draw of seed {seed} (seeds {seeds})")
    return NoiseDraw(*(arrays[key][found[0]] for key in PER_SEED))


def draw_digest(labels: np.ndarray, variances: np.ndarray) -> str:
    """SHA-256 of the noisy labels and seen variances a run trains on, as float32 (its run.json
    records it: the draw it trained on, comparable with its draw file's)."""
    digest = hashlib.sha256(np.asarray(labels, np.float32).tobytes())
    digest.update(np.asarray(variances, np.float32).tobytes())
    return digest.hexdigest()


def summary(arrays: dict, thresholds: Iterable[float]) -> str:
    """CSV of each seed's draw: the mean and variance of sigma^2 over the training labels and
    the fraction of labels with sigma^2 below each cutoff threshold (raw units), one row per
    (seed, statistic, threshold)."""
    rows = ["seed,statistic,threshold,value"]
    for seed, var in zip(arrays["seeds"], arrays["var"], strict=True):
        rows.append(f"{seed},mean_var,,{float(var.mean())!r}")
        rows.append(f"{seed},var_var,,{float(var.var())!r}")
        rows += [f"{seed},fraction_below,{t!r},{float((var < t).mean())!r}" for t in thresholds]
    return "\n".join(rows) + "\n"
