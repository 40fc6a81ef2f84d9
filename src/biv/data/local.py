"""The local files a dataset's ``path`` names, checked before any job (by
:func:`biv.workflow.plan.load_plan`) and by the loaders with the same functions: a UCI dataset's
folder, zip or file, the UTKFace image folder and its checksum listing (stdlib only)."""

from __future__ import annotations

import os
from pathlib import Path

from biv.config.dataset import (
    FILES,
    UCIConfig,
    UTKFaceConfig,
    local_hint,
    local_path,
    prefix_of,
    utkface_hint,
)
from biv.config.errors import ConfigError
from biv.config.naming import SWEEP_SEP


def uci_location(name: str, cfg: UCIConfig) -> Path:
    """The local ``path`` of a UCI dataset, expanded: a folder holding the files its kind reads,
    a zip (not damaged or truncated), or the one file it reads."""
    prefix = prefix_of(name)
    path = local_path(f"{prefix}.path", cfg.path)
    files = FILES[cfg.kind]
    hint = local_hint(prefix, files)
    if not path.exists():
        raise ConfigError(f"{prefix}.path", f"{str(path)!r} does not exist; {hint}")
    if path.is_file() and (problem := zip_problem(path, single_file_ok=len(files) == 1)):
        raise ConfigError(f"{prefix}.path", f"{str(path)!r} {problem}; {hint}")
    if path.is_dir():
        missing = [f for f in files if not (path / f).is_file()]
        if missing:
            raise ConfigError(f"{prefix}.path", f"{str(path)!r} holds no {missing[0]}; {hint}")
    return path


def image_files(name: str, cfg: UTKFaceConfig) -> tuple[Path, list[str]]:
    """The UTKFace folder (``path`` expanded) and the names of its ``*.jpg`` files (not hidden,
    not recursive, in listing order)."""
    prefix = prefix_of(name)
    folder = local_path(f"{prefix}.path", cfg.path)
    hint = utkface_hint(name.split(SWEEP_SEP, 1)[0])
    if not folder.is_dir():
        raise ConfigError(f"{prefix}.path", f"{str(folder)!r} is not a folder; {hint}")
    with os.scandir(folder) as entries:
        names = [
            e.name
            for e in entries
            if e.name.lower().endswith(".jpg") and not e.name.startswith(".") and e.is_file()
        ]
    if not names:
        raise ConfigError(f"{prefix}.path", f"{str(folder)!r} holds no .jpg files; {hint}")
    return folder, names


def checksum_listing(name: str, cfg: UTKFaceConfig) -> Path | None:
    """The sha256sum-format listing that ``sha256`` names (expanded), or None."""
    if not isinstance(cfg.sha256, str):
        return None
    key = f"{prefix_of(name)}.sha256"
    listing = local_path(key, cfg.sha256)
    if not listing.is_file():
        raise ConfigError(
            key,
            f"{str(listing)!r} is not a file; expected a sha256sum-format listing of the "
            "images ('<sha256>  <file>' per line)",
        )
    return listing


def zip_problem(path: Path, single_file_ok: bool) -> str | None:
    """Why the local file ``path`` cannot be read as the publisher zip, or None. A file that
    starts like a zip but has no end-of-archive record is damaged or truncated (a partial copy
    or download); another file is allowed only as the single file its kind reads."""
    import zipfile

    if zipfile.is_zipfile(path):
        return None
    with open(path, "rb") as f:
        starts_as_zip = f.read(4) == b"PK\x03\x04"
    if starts_as_zip:
        size = path.stat().st_size
        return f"is a damaged or truncated zip ({size} bytes; no end-of-archive record)"
    return None if single_file_ok else "is neither a zip nor a folder"


def check_split(name: str, n_total: int, n_train: int, n_test: int, what: str) -> None:
    """A split of ``n_train`` + ``n_test`` of the ``n_total`` records of ``what`` must fit."""
    if n_train + n_test > n_total:
        raise ConfigError(
            f"{prefix_of(name)}.train_size",
            f"{n_train} + test_size {n_test} = {n_train + n_test} exceeds the {n_total} records "
            f"of {what}; allowed with this test_size: at most {max(n_total - n_test, 0)}",
        )
