"""UCI Bike Sharing (``hour.csv``; target ``cnt``, rentals per hour), 19 features.

``FEATURE_NAMES`` (in order), computed from the raw columns of ``hour.csv``:

- ``yr``: 0 = 2011, 1 = 2012.
- ``date_sin``, ``date_cos``: sin/cos of ``4*pi * t / 730``, where t = days since 2011-01-01
  (``dteday``), so 2011-01-01 ... 2012-12-31 (t = 0 ... 730) maps onto [0, 4*pi].
- ``hr_sin``, ``hr_cos``: sin/cos of ``2*pi * hr / 24``.
- ``weekday_0`` ... ``weekday_6``: one-hot of ``weekday`` (0 = Sunday).
- ``holiday``, ``workingday``, ``weathersit`` (1-4, as published),
  ``temp``, ``atemp``, ``hum``, ``windspeed`` (as published, already scaled to about [0, 1]).

``season``, ``mnth``, ``instant``, ``casual`` and ``registered`` are not used. The split is a
seeded permutation of the rows (``train_index``/``test_index`` = row number in hour.csv, 0-based).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from biv.config.dataset import BikeConfig
from biv.data.prepared import assemble, split_indices
from biv.data.sources import DownloadCache, fetch
from biv.data.strict_csv import integer_codes, read_table

FILE = "hour.csv"
FEATURE_NAMES = [
    "yr",
    "date_sin",
    "date_cos",
    "hr_sin",
    "hr_cos",
    *(f"weekday_{d}" for d in range(7)),
    "holiday",
    "workingday",
    "weathersit",
    "temp",
    "atemp",
    "hum",
    "windspeed",
]
_CODE_RANGES = {"yr": (0, 1), "holiday": (0, 1), "workingday": (0, 1), "weathersit": (1, 4)}
_NUMERIC = ["hr", "weekday", *_CODE_RANGES]
_PASSTHROUGH = ["temp", "atemp", "hum", "windspeed"]
TARGET = "cnt"


def features(columns: dict[str, np.ndarray], where: str) -> np.ndarray:
    """The (N, 19) float32 feature matrix from the parsed columns of hour.csv."""
    dates = pd.to_datetime(pd.Series(columns["dteday"]), format="%Y-%m-%d", errors="coerce")
    if dates.isna().any():
        row = int(np.argmax(dates.isna().to_numpy()))
        raise ValueError(
            f"{where}: line {row + 2}, column 'dteday': {columns['dteday'][row]!r} is not a "
            "YYYY-MM-DD date"
        )
    days = (dates - pd.Timestamp("2011-01-01")).dt.days.to_numpy(dtype=np.float64)
    date_angle = 4 * np.pi * days / 730
    hour_angle = 2 * np.pi * integer_codes(where, "hr", columns["hr"], 0, 23) / 24
    weekday = integer_codes(where, "weekday", columns["weekday"], 0, 6)
    codes = {c: integer_codes(where, c, columns[c], *_CODE_RANGES[c]) for c in _CODE_RANGES}
    parts = [
        codes["yr"][:, None],
        np.sin(date_angle)[:, None],
        np.cos(date_angle)[:, None],
        np.sin(hour_angle)[:, None],
        np.cos(hour_angle)[:, None],
        np.eye(7)[weekday],
        *(codes[c][:, None] for c in ("holiday", "workingday", "weathersit")),
        *(columns[c][:, None] for c in _PASSTHROUGH),
    ]
    return np.concatenate(parts, axis=1, dtype=np.float64).astype(np.float32)


def prepare(name: str, cfg: BikeConfig, cache: DownloadCache | None) -> dict:
    """Read, check and split hour.csv per ``cfg``; return the prepared dict."""
    raw = fetch(name, cfg, (FILE,), cache)[FILE]
    columns = read_table(raw, ",", [*_NUMERIC, *_PASSTHROUGH, TARGET], text=("dteday",))
    x = features(columns, raw.origin)
    y = columns[TARGET]
    train, test = split_indices(
        name, len(y), cfg.train_size, cfg.test_size, cfg.split_seed, raw.origin
    )
    meta = {
        "dataset": name,
        "kind": "bike",
        "sources": [{"file": FILE, "sha256": raw.sha256, "origin": raw.origin}],
        "split_seed": cfg.split_seed,
        "feature_names": FEATURE_NAMES,
        "target": TARGET,
        "index": "row of hour.csv (0-based, header excluded)",
        "config": cfg.to_dict(),
    }
    return assemble(x[train], y[train], x[test], y[test], train, test, meta)
