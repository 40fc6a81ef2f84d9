"""Datasets prepared once into a single tensor file each (keys: config/README.md, checks:
:mod:`biv.config.dataset`; file layout: :mod:`biv.data.prepared`)."""

from __future__ import annotations

import os

from biv import atomic
from biv.config.dataset import (
    BikeConfig,
    SyntheticConfig,
    TableConfig,
    WineConfig,
    parse,
    prefix_of,
)
from biv.config.errors import not_allowed
from biv.data.prepared import label_stats, load_prepared, write
from biv.data.sources import DownloadCache, expand

__all__ = ["load_prepared", "prepare"]


def prepare(
    name: str,
    cfg: dict,
    out_path: str | os.PathLike,
    download_dir: str | os.PathLike | None = None,
    *,
    workers: int | None = None,
    stats_path: str | os.PathLike | None = None,
    network: bool = True,
) -> dict:
    """Parse ``cfg`` (a ``datasets`` entry, as the prepare rule's params give it) with
    :func:`biv.config.dataset.parse`, build dataset ``name`` and write it atomically to
    ``out_path``.

    ``download_dir`` caches publisher zips (needed only for ``url``; without ``network`` a zip
    must be there already: the workflow's download job fetched it); ``workers`` is the number
    of image-decoding threads (default: available CPUs, at most 8); ``stats_path``, if given,
    receives the label statistics as JSON (:func:`biv.data.prepared.label_stats`), for jobs that
    need them without torch. Every check runs before anything is written. Returns the written
    file's ``meta``.
    """
    # each kind's module is imported when used: pandas (Bike, Wine, tables) and PIL (UTKFace)
    # would add 0.45 s to every job that only loads a prepared file (training, noise draws)
    spec = parse(name, cfg)
    if spec.split_per_run:
        raise not_allowed(
            f"{prefix_of(name)}.split_seed",
            spec.split_seed,
            "a prepared file holds one split: prepare each run's, split_with(seed)",
        )
    cache = None if download_dir is None else DownloadCache(download_dir, network)
    if isinstance(spec, SyntheticConfig):
        from biv.data import synthetic

        prepared = synthetic.prepare(name, spec)
    elif isinstance(spec, BikeConfig):
        from biv.data import bike

        prepared = bike.prepare(name, spec, cache)
    elif isinstance(spec, WineConfig):
        from biv.data import wine

        prepared = wine.prepare(name, spec, cache)
    elif isinstance(spec, TableConfig):
        from biv.data import user_table

        prepared = user_table.prepare(name, spec)
    else:
        from biv.data import utkface

        if workers is None:
            cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
            workers = min(8, len(cpus) if cpus else os.cpu_count() or 1)
        elif not (isinstance(workers, int) and workers >= 1):
            raise ValueError(f"workers: {workers!r} is not allowed; expected an integer >= 1")
        prepared = utkface.prepare(name, spec, workers)
    write(expand(out_path), prepared)
    if stats_path is not None:
        atomic.write_json(expand(stats_path), label_stats(prepared))
    return prepared["meta"]
