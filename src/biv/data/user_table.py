"""A user's table (``kind: table``): read and checked once, before any job (torch-free), then
split and assembled like the paper's datasets (:func:`prepare`).

Every problem is a ConfigError naming the dataset key, the column and, for a cell, the row:
``row i`` counts data rows from 0 (in a CSV file that is line i + 2, after the header).
Feature columns stay raw here; standardisation and label statistics come from the training
split in :func:`prepare`.

Layout beyond :mod:`biv.data.prepared`: ``y_train``/``y_test`` hold the ``clean_target`` when
given, else the ``target`` column (then taken as the labels to score on). With a ``variance``
column the file also holds ``y_noisy_train`` and ``var_train`` (the target labels of the training
split and their variances, raw units, what experiments without a ``noise`` key train on) and,
without a ``clean_target``, ``var_test``: the variance of each (noisy) test label.
``train_index``/``test_index`` are row numbers of the table (0-based, header excluded).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from biv.config.dataset import TABLE_SUFFIXES, TableConfig, local_path, parse
from biv.config.errors import ConfigError
from biv.config.naming import SWEEP_SEP
from biv.data.prepared import assemble

ROLES = ("target", "variance", "clean_target", "split")
SPLIT_VALUES = ("train", "test")


@dataclass(frozen=True)
class Table:
    """The checked columns of a table (float64 arrays over all rows) and its split."""

    x: np.ndarray  # (N, F): numeric features, then one-hot categorical columns
    feature_names: list[str]
    y: np.ndarray  # the target column: the labels as given (noisy when a variance is given)
    variance: np.ndarray | None  # known noise variance of each target label
    clean: np.ndarray | None  # the noise-free labels (scoring and synthetic noise only)
    train: np.ndarray  # row numbers (0-based) of the training split
    test: np.ndarray
    unused: list[str]  # columns left out of the default features (text columns)
    file: str
    sha256: str


def suffix(path: str) -> str | None:
    """The recognised suffix of ``path`` (case-insensitive), or None."""
    lower = path.lower()
    return next((s for s in TABLE_SUFFIXES if lower.endswith(s)), None)


def load(prefix: str, cfg: TableConfig) -> Table:
    """The table of ``cfg`` (keys under ``prefix``), read once per process and file version."""
    path = local_path(f"{prefix}.path", cfg.path)
    if not path.is_file():
        raise ConfigError(
            f"{prefix}.path",
            f"{str(path)!r} does not exist or is not a file (a .csv, .csv.gz or .parquet table)",
        )
    stat = path.stat()
    cfg_text = json.dumps(cfg.to_dict(), sort_keys=True)  # hashable, for the cache
    return _load(prefix, cfg_text, str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _load(prefix: str, cfg_text: str, path: str, _mtime: int, _size: int) -> Table:
    name = Path(path).name
    cfg = parse(name, json.loads(cfg_text), prefix)
    data = Path(path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    want = (cfg.sha256 or {}).get(name)
    if want is not None and want != digest:
        raise ConfigError(
            f"{prefix}.sha256.{name}",
            f"{path} has sha256 {digest}, not the expected {want}; the file is damaged or "
            f"changed. To use it anyway, set {prefix}.sha256.{name}: {digest}",
        )
    frame = _read(prefix, path, data)
    return _check(prefix, cfg, frame, path, digest)


def _read(prefix: str, path: str, data: bytes) -> pd.DataFrame:
    if suffix(path) == ".parquet":
        try:
            frame = pd.read_parquet(io.BytesIO(data))
        except ImportError:
            raise ConfigError(
                f"{prefix}.path",
                f"{path}: reading Parquet needs pyarrow: pip install 'biv-pipeline[parquet]'",
            ) from None
        except Exception as err:  # pyarrow raises its own types for damaged files
            raise ConfigError(
                f"{prefix}.path", f"{path} does not parse as Parquet ({err})"
            ) from None
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", pd.errors.ParserWarning)  # ragged first row
                frame = pd.read_csv(
                    io.BytesIO(data),
                    dtype=str,
                    keep_default_na=False,
                    index_col=False,
                    compression="gzip" if suffix(path) == ".csv.gz" else None,
                )
        except (
            pd.errors.ParserError,
            pd.errors.ParserWarning,
            pd.errors.EmptyDataError,
            UnicodeDecodeError,
            OSError,
            EOFError,
        ) as err:
            raise ConfigError(
                f"{prefix}.path", f"{path} does not parse as a comma-separated table ({err})"
            ) from None
    if frame.empty:
        raise ConfigError(f"{prefix}.path", f"{path} has no data rows")
    return frame


def _row(path: str, row: int) -> str:
    return f"row {row} (line {row + 2})" if suffix(path) != ".parquet" else f"row {row}"


def _is_text(values: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values))


def _missing(values: pd.Series) -> np.ndarray:
    missing = values.isna().to_numpy(dtype=bool)
    if _is_text(values):
        return missing | values.astype(str).str.strip().eq("").to_numpy(dtype=bool)
    return missing


def _parsed(values: pd.Series) -> np.ndarray:
    """Float64 values; NaN where a cell is empty or not a number."""
    if not _is_text(values):
        return values.astype("float64").to_numpy(dtype=np.float64, na_value=np.nan)
    text = values.astype(str).str.strip()
    return pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _numbers(key: str, column: str, values: pd.Series, path: str, hint: str = "") -> np.ndarray:
    """The column as finite float64, or a ConfigError naming the first bad cell."""
    number = _parsed(values)
    bad = ~np.isfinite(number)
    if bad.any():
        row = int(np.argmax(bad))
        problem = (
            "is empty" if _missing(values)[row] else f"{values.iloc[row]!r} is not a finite number"
        )
        raise ConfigError(key, f"column {column!r}, {_row(path, row)} of {path}: {problem}{hint}")
    return number


def _texts(key: str, column: str, values: pd.Series, path: str) -> np.ndarray:
    missing = _missing(values)
    if missing.any():
        row = int(np.argmax(missing))
        raise ConfigError(key, f"column {column!r}, {_row(path, row)} of {path}: is empty")
    return values.astype(str).str.strip().to_numpy(dtype=object)


def _columns(
    prefix: str, cfg: TableConfig, frame: pd.DataFrame, path: str
) -> tuple[list, list, list]:
    """(features, categorical, unused) column names; each role's column must exist once."""
    where: dict[str, str] = {}
    for role in ROLES:
        if getattr(cfg, role) is not None:
            where.setdefault(getattr(cfg, role), f"{prefix}.{role}")
    for key in ("features", "categorical"):
        for i, column in enumerate(getattr(cfg, key) or ()):
            where.setdefault(column, f"{prefix}.{key}[{i}]")
    for column, key in where.items():
        if column not in frame.columns:
            raise ConfigError(
                key, f"column {column!r} is not in {path} (its columns: {list(frame.columns)})"
            )
    roles = [r for r in ROLES if getattr(cfg, r) is not None]
    used = [getattr(cfg, r) for r in roles]
    for i, role in enumerate(roles):
        if used.index(used[i]) != i:
            raise ConfigError(
                f"{prefix}.{role}",
                f"column {used[i]!r} is also {prefix}.{roles[used.index(used[i])]}",
            )
    listed = [*(cfg.features or []), *cfg.categorical]
    for i, column in enumerate(listed):
        key = _listed_key(prefix, cfg, i)
        if column in used or listed.index(column) != i:
            raise ConfigError(key, f"column {column!r} already has another role in {prefix}")
    if cfg.features is not None:
        return list(cfg.features), list(cfg.categorical), []
    features, unused = [], []
    for column in frame.columns:
        if column in used or column in cfg.categorical:
            continue
        values = frame[column]
        if not _is_text(values):
            features.append(column)
            continue
        number = _parsed(values)
        present = ~_missing(values)
        parsed = np.isfinite(number) & present
        if not parsed.any():
            unused.append(column)
        elif (present & ~parsed).any():
            row = int(np.argmax(present & ~parsed))
            raise ConfigError(
                f"{prefix}.features",
                f"column {column!r} (a default feature: every other numeric column) mixes numbers "
                f"and text: {_row(path, row)} of {path} is {values.iloc[row]!r}; fix the cell, "
                f"list the column in {prefix}.categorical, or list {prefix}.features",
            )
        else:
            features.append(column)
    if not features and not cfg.categorical:
        raise ConfigError(f"{prefix}.features", f"{path} has no numeric column besides the labels")
    return features, list(cfg.categorical), unused


def _listed_key(prefix: str, cfg: TableConfig, i: int) -> str:
    n = len(cfg.features or [])
    return f"{prefix}.features[{i}]" if i < n else f"{prefix}.categorical[{i - n}]"


def _split(
    prefix: str, cfg: TableConfig, frame: pd.DataFrame, path: str
) -> tuple[np.ndarray, np.ndarray]:
    n = len(frame)
    if cfg.split is not None:
        key, column = f"{prefix}.split", cfg.split
        values = _texts(key, column, frame[column], path)
        bad = ~np.isin(values, SPLIT_VALUES)
        if bad.any():
            row = int(np.argmax(bad))
            raise ConfigError(
                key,
                f"column {column!r}, {_row(path, row)} of {path}: {values[row]!r} is neither "
                "'train' nor 'test'",
            )
        train, test = np.flatnonzero(values == "train"), np.flatnonzero(values == "test")
        for part, rows in (("training", train), ("test", test)):
            if not len(rows):
                raise ConfigError(key, f"column {column!r} of {path} leaves the {part} split empty")
        return train, test
    size = cfg.test_size
    n_test = size if isinstance(size, int) else int(round(size * n))
    for part, count in (("test", n_test), ("training", n - n_test)):
        if count < 1:
            raise ConfigError(
                f"{prefix}.test_size",
                f"{size!r} leaves the {part} split of the {n} rows of {path} empty",
            )
    perm = np.random.default_rng(cfg.split_seed).permutation(n)
    return perm[: n - n_test], perm[n - n_test :]


def _check_constant(
    key: str, column: str, values: np.ndarray, train: np.ndarray, path: str
) -> None:
    part = values[train]
    if len(part) and (part == part[0]).all():
        first = part[0] if isinstance(part[0], str) else float(part[0])
        raise ConfigError(
            key,
            f"column {column!r} of {path} is constant on the training split (every value "
            f"{first!r}); it carries no information",
        )


def _check(prefix: str, cfg: TableConfig, frame: pd.DataFrame, path: str, digest: str) -> Table:
    features, categorical, unused = _columns(prefix, cfg, frame, path)
    train, test = _split(prefix, cfg, frame, path)
    target = cfg.target
    y = _numbers(f"{prefix}.target", target, frame[target], path)
    _check_constant(f"{prefix}.target", target, y, train, path)
    variance = clean = None
    if cfg.variance is not None:
        column = cfg.variance
        variance = _numbers(f"{prefix}.variance", column, frame[column], path)
        if (variance < 0).any():
            row = int(np.argmax(variance < 0))
            raise ConfigError(
                f"{prefix}.variance",
                f"column {column!r}, {_row(path, row)} of {path}: {float(variance[row])!r} is "
                "negative; a label variance is >= 0",
            )
    if cfg.clean_target is not None:
        column = cfg.clean_target
        clean = _numbers(f"{prefix}.clean_target", column, frame[column], path)
    parts, names = [], []
    hint = f"; a text column must be listed in {prefix}.categorical"
    for i, column in enumerate(features):
        key = f"{prefix}.features" + (f"[{i}]" if cfg.features is not None else "")
        values = _numbers(key, column, frame[column], path, hint)
        _check_constant(key, column, values, train, path)
        parts.append(values[:, None])
        names.append(column)
    for i, column in enumerate(categorical):
        key = f"{prefix}.categorical[{i}]"
        values = _texts(key, column, frame[column], path)
        levels = sorted(set(values[train]))
        if len(levels) < 2:
            _check_constant(key, column, values, train, path)
        unseen = ~np.isin(values[test], levels)
        if unseen.any():
            row = int(test[np.argmax(unseen)])
            raise ConfigError(
                key,
                f"column {column!r}, {_row(path, row)} of {path} (test split): {values[row]!r} "
                "does not occur in the training split, whose levels define the one-hot encoding",
            )
        parts.append((values[:, None] == np.array(levels, dtype=object)[None, :]).astype(float))
        names += [f"{column}={level}" for level in levels]
    return Table(
        x=np.concatenate(parts, axis=1),
        feature_names=names,
        y=y,
        variance=variance,
        clean=clean,
        train=train,
        test=test,
        unused=unused,
        file=Path(path).name,
        sha256=digest,
    )


def prepare(name: str, cfg: TableConfig) -> dict:
    """Read, check and split the table per ``cfg``; return the prepared dict."""
    table = load(f"datasets.{name.split(SWEEP_SEP, 1)[0]}", cfg)
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
