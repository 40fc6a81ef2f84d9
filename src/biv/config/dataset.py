"""A ``datasets.<name>`` entry checked strictly, its local files included (torch-free).

Every error names the key and the value; the keys are documented in config/README.md.
"""

from __future__ import annotations

import os
import re
from dataclasses import MISSING, dataclass, fields, replace
from pathlib import Path
from typing import Any

from biv.config import values as v
from biv.config.errors import ConfigError, fail
from biv.config.naming import SWEEP_SEP

DATASET_KINDS = ("synthetic", "bike", "wine", "utkface", "table")
# The published files each tabular kind reads (the keys its ``sha256`` mapping may use).
FILES = {"bike": ("hour.csv",), "wine": ("winequality-red.csv", "winequality-white.csv")}
TABLE_SUFFIXES = (".csv", ".csv.gz", ".parquet")
UTKFACE_PAGE = "https://susanqq.github.io/UTKFace/"
UTKFACE_NATIVE_SIZE = 200  # side of the published aligned and cropped faces
#: ``split_seed: run``: every run splits the data with its own seed (as the original Bike loader).
SPLIT_PER_RUN = "run"
#: The publishers' zips of the tabular datasets (the defaults of ``biv legacy``).
PUBLISHER_URLS = {
    "bike": "https://archive.ics.uci.edu/static/public/275/bike+sharing+dataset.zip",
    "wine": "https://archive.ics.uci.edu/static/public/186/wine+quality.zip",
}


def utkface_hint(name: str) -> str:
    """Where to get UTKFace and which key to set."""
    return (
        f"get the 'Aligned&Cropped Faces' archive UTKFace.tar.gz from {UTKFACE_PAGE}, extract "
        f"it and set datasets.{name}.path to the folder of .jpg images"
    )


_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


class _Entry:
    """A validated ``datasets.<name>`` entry: its keys as typed fields, ``kind`` first."""

    def to_dict(self) -> dict[str, Any]:
        """The entry as a mapping with every default filled in (the prepare rule's params and
        the prepared file's ``meta["config"]``); lists as lists."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    @property
    def split_per_run(self) -> bool:
        """Whether every run splits the data with its own seed (``split_seed: run``)."""
        return getattr(self, "split_seed", 0) == SPLIT_PER_RUN

    def split_with(self, seed: int) -> _Entry:
        """This entry with one split, the one ``split_seed: seed`` makes."""
        return replace(self, split_seed=seed)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return dict(value) if isinstance(value, dict) else value


@dataclass(frozen=True)
class SyntheticConfig(_Entry):
    kind: str
    n_train: int
    n_test: int
    seed: int
    n_features: int = 8
    split_seed: int = 0  # accepted (a workflow schema default) but only 0: there is no split


@dataclass(frozen=True)
class _SplitConfig(_Entry):
    """Published data split by a seeded permutation (``split_seed``)."""

    kind: str
    train_size: int
    test_size: int
    split_seed: int | str = 0  # or SPLIT_PER_RUN


@dataclass(frozen=True)
class UCIConfig(_SplitConfig):
    """A published UCI table (bike, wine): a local ``path`` (which wins) or the zip's ``url``."""

    sha256: dict[str, str] | None = None  # file name -> digest (lower-case hex)
    path: str | None = None
    url: str | None = None


class BikeConfig(UCIConfig):
    """UCI Bike Sharing (hour.csv)."""


class WineConfig(UCIConfig):
    """UCI Wine Quality (red and white)."""


@dataclass(frozen=True)
class UTKFaceConfig(_SplitConfig):
    sha256: dict[str, str] | str | None = None  # digests by file name, or a listing's path
    path: str | None = None  # always given once validated (UTKFace has no URL)
    image_size: int | None = None

    @property
    def image_side(self) -> int:
        """Side length of the prepared images."""
        return self.image_size or UTKFACE_NATIVE_SIZE


@dataclass(frozen=True)
class TableConfig(_Entry):
    kind: str
    path: str
    target: str
    variance: str | None = None
    clean_target: str | None = None
    features: tuple[str, ...] | None = None
    categorical: tuple[str, ...] = ()
    test_size: int | float | None = None
    split: str | None = None
    split_seed: int | str = 0  # or SPLIT_PER_RUN
    sha256: dict[str, str] | None = None


DatasetConfig = SyntheticConfig | BikeConfig | WineConfig | UTKFaceConfig | TableConfig
_CLASSES: dict[str, type] = {
    "synthetic": SyntheticConfig,
    "bike": BikeConfig,
    "wine": WineConfig,
    "utkface": UTKFaceConfig,
    "table": TableConfig,
}
# Per kind: key -> default (_REQUIRED: must be given). path/url are checked by _check_source.
_REQUIRED = object()
_KEYS: dict[str, dict[str, Any]] = {
    kind: {f.name: _REQUIRED if f.default is MISSING else f.default for f in fields(cls)[1:]}
    for kind, cls in _CLASSES.items()
}
_POSITIVE_INTS = ("train_size", "n_train", "n_test", "image_size")
#: Most samples of each split of a synthetic dataset (held in memory: n x n_features floats).
MAX_SYNTHETIC = 10_000_000


def _fail(prefix: str, key: str, value: Any, allowed: str) -> ConfigError:
    return fail(f"{prefix}.{key}", value, allowed)


def parse(name: str, cfg: Any, prefix: str | None = None) -> DatasetConfig:
    """The typed entry of ``cfg``, or a ConfigError naming the key and value (under ``prefix``,
    default ``datasets.<name>``).

    Checks unknown and missing keys, types and ranges; nothing is clipped or coerced except
    that sha256 hex digests are lower-cased.
    """
    out = _validated(name, cfg, prefix or f"datasets.{name}")
    for key in ("features", "categorical"):
        if out.get(key) is not None:
            out[key] = tuple(out[key])
    return _CLASSES[out["kind"]](**out)


def _validated(name: str, cfg: Any, prefix: str) -> dict[str, Any]:
    """``cfg`` checked, with defaults filled in."""
    if not isinstance(cfg, dict):
        raise fail(prefix, cfg, "a mapping of keys")
    kind = cfg.get("kind")
    if kind not in DATASET_KINDS:
        raise _fail(prefix, "kind", kind, f"one of {list(DATASET_KINDS)}")
    spec = _KEYS[kind]
    if kind == "utkface" and (cfg.get("path") is None or "url" in cfg):
        key = "url" if "url" in cfg else "path"
        raise ConfigError(
            f"{prefix}.{key}",
            f"{cfg.get(key)!r} is not allowed; UTKFace has no stable download URL: "
            f"{utkface_hint(name)}",
        )
    unknown = sorted(set(cfg) - set(spec) - {"kind"}, key=str)
    if unknown:
        key = unknown[0]
        raise _fail(prefix, key, cfg[key], f"no such key for kind {kind!r} (known: {sorted(spec)})")
    out: dict[str, Any] = {"kind": kind}
    for key, default in spec.items():
        if key not in cfg and default is _REQUIRED:
            raise ConfigError(f"{prefix}.{key}", f"missing; required for kind {kind!r}")
        out[key] = cfg.get(key, default)
    if "test_size" in out and kind != "table":
        v.integer(f"{prefix}.test_size", out["test_size"], 1)
    for key in _POSITIVE_INTS:
        if out.get(key) is not None:
            v.integer(f"{prefix}.{key}", out[key], 1)
    if "seed" in out:
        v.integer(f"{prefix}.seed", out["seed"], 0, v.MAX_SEED)
    split_seed = out["split_seed"]
    if split_seed != SPLIT_PER_RUN and not (v.is_int(split_seed) and 0 <= split_seed <= v.MAX_SEED):
        allowed = (
            f"an integer >= 0 and <= {v.MAX_SEED} (one split for every run) or "
            f"{SPLIT_PER_RUN!r} (every run splits with its own seed)"
        )
        raise _fail(prefix, "split_seed", split_seed, allowed)
    if kind == "synthetic":
        for key in ("n_train", "n_test"):
            if out[key] > MAX_SYNTHETIC:
                raise _fail(prefix, key, out[key], f"at most {MAX_SYNTHETIC:,} (held in memory)")
        v.integer(f"{prefix}.n_features", out["n_features"], 8)
        if out["split_seed"] != 0:
            raise _fail(
                prefix,
                "split_seed",
                out["split_seed"],
                "0 (synthetic train and test sets are independent draws; vary seed instead)",
            )
        return out
    if kind == "table":
        return _check_table(prefix, out)
    _check_source(prefix, out)
    out["sha256"] = _check_sha256(prefix, kind, out["sha256"])
    return out


def _check_table(prefix: str, out: dict[str, Any]) -> dict[str, Any]:
    """The keys of a table; its file is read by :func:`biv.data.user_table.load`."""
    path = out["path"]
    if not isinstance(path, str | os.PathLike):
        raise _fail(prefix, "path", path, "the path of a .csv, .csv.gz or .parquet file")
    out["path"] = os.fspath(path)
    if not out["path"].lower().endswith(TABLE_SUFFIXES):
        raise _fail(prefix, "path", out["path"], f"a file ending in {' or '.join(TABLE_SUFFIXES)}")
    for key in ("target", "variance", "clean_target", "split"):
        value = out[key]
        if value is not None and not (isinstance(value, str) and value):
            raise _fail(prefix, key, value, "a column name")
    out["categorical"] = list(out["categorical"] or [])
    for key in ("features", "categorical"):
        value = out[key]
        if value is None:
            continue
        if not isinstance(value, list) or (key == "features" and not value):
            raise _fail(prefix, key, value, "a non-empty list of column names")
        for i, column in enumerate(value):
            if not (isinstance(column, str) and column):
                raise _fail(prefix, f"{key}[{i}]", column, "a column name")
    size, split = out["test_size"], out["split"]
    if (size is None) == (split is None):
        raise ConfigError(
            prefix,
            "needs exactly one of test_size (a fraction or a count of rows) and split (a column "
            f"of 'train'/'test'); got {'both' if split is not None else 'neither'}",
        )
    if size is not None and not (
        (v.is_int(size) and size >= 1) or (isinstance(size, float) and 0 < size < 1)
    ):
        raise _fail(prefix, "test_size", size, "a fraction 0 < f < 1 or a count of rows >= 1")
    if split is not None and out["split_seed"] != 0:
        raise _fail(prefix, "split_seed", out["split_seed"], "0 (the split column fixes the split)")
    digests = _check_sha256(prefix, "table", out["sha256"])
    name = Path(out["path"]).name
    for file in digests or {}:
        if file != name:
            raise _fail(prefix, f"sha256.{file}", digests[file], f"the file name {name!r} of path")
    out["sha256"] = digests
    return out


def _check_source(prefix: str, out: dict[str, Any]) -> None:
    path, url = out["path"], out.get("url")
    if path is not None and not isinstance(path, str | os.PathLike):
        raise _fail(prefix, "path", path, "a file or folder path (string)")
    if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        raise _fail(prefix, "url", url, "an http:// or https:// URL of the publisher zip")
    if path is not None:
        out["path"] = os.fspath(path)
    if path is None and url is None:
        raise ConfigError(
            prefix,
            f"missing both path and url; set {prefix}.path to a local copy or {prefix}.url to "
            "the publisher zip",
        )


def _check_sha256(prefix: str, kind: str, value: Any) -> dict[str, str] | str | None:
    if value is None:
        return None
    if kind == "utkface" and isinstance(value, str | os.PathLike):
        return os.fspath(value)
    allowed = "a mapping {file name: 64-digit hex sha256}" + (
        " or the path of a sha256sum-format listing" if kind == "utkface" else ""
    )
    if not isinstance(value, dict):
        raise _fail(prefix, "sha256", value, allowed)
    for file, digest in value.items():
        if kind in FILES and file not in FILES[kind]:
            raise _fail(prefix, f"sha256.{file}", digest, f"file names among {list(FILES[kind])}")
        if not isinstance(file, str) or not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise _fail(prefix, f"sha256.{file}", digest, allowed)
    return {file: value[file].lower() for file in sorted(value)}  # one order: a stable param


def expand_text(path: str | os.PathLike) -> str:
    """``path`` with ``~`` and ``$VARS`` expanded, as text (not normalised as a Path is)."""
    return os.path.expandvars(os.path.expanduser(os.fspath(path)))


def expand(path: str | os.PathLike) -> Path:
    """``path`` with ``~`` and ``$VARS`` expanded (as the loaders read it)."""
    return Path(expand_text(path))


def local_path(key: str, value: str) -> Path:
    """A configured local path, expanded; every variable it names must be set."""
    path = expand(value)
    if "$" in str(path):
        raise ConfigError(key, f"{value!r} names an environment variable that is not set")
    return path


def prefix_of(name: str) -> str:
    """``datasets.<name>`` as the user wrote it (a sweep's derived name without its suffix)."""
    return f"datasets.{name.split(SWEEP_SEP, 1)[0]}"


def local_hint(prefix: str, files: tuple[str, ...]) -> str:
    """What a local ``path`` of a tabular kind may be (the loaders' messages end with it too)."""
    if len(files) == 1:
        where = f"the publisher zip, the folder holding {files[0]} or {files[0]} itself"
    else:
        where = f"the publisher zip or the folder holding {' and '.join(files)}"
    return f"to use a local copy, set {prefix}.path to {where}"
