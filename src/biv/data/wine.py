"""UCI Wine Quality: red and white files concatenated (red rows first), 11 features.

``FEATURE_NAMES`` are the 11 physico-chemical columns as published (``fixed acidity`` ...
``alcohol``); the target is ``quality`` (0-10). ``train_index``/``test_index`` number the rows
of the concatenation: 0-1598 red, 1599-6496 white (``meta["records"]``); the split is a seeded
permutation of them.
"""

from __future__ import annotations

import numpy as np

from biv.config.dataset import WineConfig
from biv.data.prepared import assemble, split_indices
from biv.data.sources import DownloadCache, fetch
from biv.data.strict_csv import read_table

FILES = ("winequality-red.csv", "winequality-white.csv")
FEATURE_NAMES = [
    "fixed acidity",
    "volatile acidity",
    "citric acid",
    "residual sugar",
    "chlorides",
    "free sulfur dioxide",
    "total sulfur dioxide",
    "density",
    "pH",
    "sulphates",
    "alcohol",
]
TARGET = "quality"


def prepare(name: str, cfg: WineConfig, cache: DownloadCache | None) -> dict:
    """Read, check, concatenate and split both files per ``cfg``."""
    raw = fetch(name, cfg, FILES, cache)
    tables = [read_table(raw[f], ";", [*FEATURE_NAMES, TARGET]) for f in FILES]
    x = np.concatenate([np.stack([t[c] for c in FEATURE_NAMES], axis=1) for t in tables])
    y = np.concatenate([t[TARGET] for t in tables])
    counts = [len(t[TARGET]) for t in tables]
    train, test = split_indices(
        name, len(y), cfg.train_size, cfg.test_size, cfg.split_seed, " + ".join(FILES)
    )
    x = x.astype(np.float32)
    meta = {
        "dataset": name,
        "kind": "wine",
        "sources": [{"file": f, "sha256": raw[f].sha256, "origin": raw[f].origin} for f in FILES],
        "split_seed": cfg.split_seed,
        "feature_names": FEATURE_NAMES,
        "target": TARGET,
        "records": [
            {"file": f, "start": int(sum(counts[:i])), "count": counts[i]}
            for i, f in enumerate(FILES)
        ],
        "index": "row of the red+white concatenation (0-based; see records)",
        "config": cfg.to_dict(),
    }
    return assemble(x[train], y[train], x[test], y[test], train, test, meta)
