"""Datasets prepared once into a single tensor file each.

Config (one ``datasets:`` entry; unknown, missing or mistyped keys raise ValueError):

- every kind: ``kind``: synthetic | bike | wine | utkface.
- bike, wine: ``path`` (local folder, file or publisher zip) or ``url`` (publisher zip,
  downloaded into ``download_dir``); one is required, ``path`` wins when both are given;
  ``train_size``, ``test_size`` (required ints >= 1); ``split_seed`` (int >= 0, default 0);
  ``sha256`` ({published file name: hex}, optional, overrides the built-in published
  checksums). Paper sizes: bike 7000 (or 14000) / 3379, wine 4000 / 2491.
- utkface: ``path`` (folder of images; required, no url), ``train_size``, ``test_size``,
  ``split_seed`` (default 0), ``image_size`` (int, default None = native 200), ``sha256``
  ({file name: hex} or the path of a sha256sum-format listing; optional). Paper: 16000 / 4000.
- synthetic: ``n_train``, ``n_test``, ``seed`` (required ints), ``n_features`` (int >= 8,
  default 8), ``split_seed`` (accepted only as 0, its default: there is no split).

Paths have ``~`` and environment variables expanded. See ``biv.data.prepared`` for the file
layout and each kind's module for its features.
"""

from __future__ import annotations

import os

from biv.data import bike, synthetic, utkface, wine
from biv.data.config import KINDS, validate
from biv.data.prepared import load_prepared, write
from biv.data.sources import expand

__all__ = ["KINDS", "load_prepared", "prepare", "validate"]


def prepare(
    name: str,
    cfg: dict,
    out_path: str | os.PathLike,
    download_dir: str | os.PathLike | None = None,
    *,
    workers: int | None = None,
) -> dict:
    """Validate ``cfg``, build dataset ``name`` and write it atomically to ``out_path``.

    ``download_dir`` caches publisher zips (needed only for ``url``); ``workers`` is the number
    of image-decoding threads (default: available CPUs, at most 8). Every check runs before
    anything is written. Returns the written file's ``meta``.
    """
    cfg = validate(name, cfg)
    kind = cfg["kind"]
    if kind == "synthetic":
        prepared = synthetic.prepare(name, cfg)
    elif kind == "bike":
        prepared = bike.prepare(name, cfg, download_dir)
    elif kind == "wine":
        prepared = wine.prepare(name, cfg, download_dir)
    else:
        if workers is None:
            cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
            workers = min(8, len(cpus) if cpus else os.cpu_count() or 1)
        elif not (isinstance(workers, int) and workers >= 1):
            raise ValueError(f"workers: {workers!r} is not allowed; expected an integer >= 1")
        prepared = utkface.prepare(name, cfg, workers)
    write(expand(out_path), prepared)
    return prepared["meta"]
