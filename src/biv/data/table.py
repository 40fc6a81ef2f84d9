"""A user's table (``kind: table``): the columns checked by :mod:`biv.spec.table`, split and
assembled like the paper's datasets.

Layout beyond :mod:`biv.data.prepared`: ``y_train``/``y_test`` hold the ``clean_target`` when
given, else the ``target`` column (then taken as the labels to score on). With a ``variance``
column the file also holds ``y_noisy_train`` and ``var_train`` (the target labels of the training
split and their variances, raw units, what experiments without a ``noise`` key train on) and,
without a ``clean_target``, ``var_test``: the variance of each (noisy) test label.
``train_index``/``test_index`` are row numbers of the table (0-based, header excluded).
"""

from __future__ import annotations

import numpy as np

from biv.data.prepared import assemble
from biv.spec import table as table_spec
from biv.spec.dataset import TableConfig
from biv.spec.naming import SWEEP_SEP


def prepare(name: str, cfg: TableConfig) -> dict:
    """Read, check and split the table per ``cfg``; return the prepared dict."""
    table = table_spec.load(f"datasets.{name.split(SWEEP_SEP, 1)[0]}", cfg)
    train, test = table.train, table.test
    labels = table.y if table.clean is None else table.clean
    x = table.x.astype(np.float32)
    meta = {
        "dataset": name,
        "kind": "table",
        "sources": [{"file": table.file, "sha256": table.sha256, "origin": cfg.path}],
        "split_seed": cfg.split_seed,
        "feature_names": table.feature_names,
        "unused_columns": table.unused,
        "target": cfg.clean_target or cfg.target,
        "test_labels": "noisy" if table.variance is not None and table.clean is None else "clean",
        "index": "row of the table (0-based, header excluded)",
        "config": cfg.to_dict(),
    }
    prepared = assemble(x[train], labels[train], x[test], labels[test], train, test, meta)
    if table.variance is not None:
        prepared["y_noisy_train"] = table.y[train].astype(np.float32)
        prepared["var_train"] = table.variance[train].astype(np.float32)
        if table.clean is None:
            prepared["var_test"] = table.variance[test].astype(np.float32)
    return prepared
