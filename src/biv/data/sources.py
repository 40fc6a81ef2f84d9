"""Raw files of the tabular data sets: a local folder, file or publisher zip, or a downloaded zip.

Paths (``path``, ``download_dir``) have ``~`` and environment variables expanded
(``os.path.expanduser`` then ``os.path.expandvars``). Every file is checked against its sha256
before use: the built-in published value, or the one given in the config's ``sha256`` mapping.
Downloads go to ``download_dir`` (as :func:`archive_name` of the URL) under a temporary name and
are renamed onto the cached zip only after every checksum passes; a valid cached zip is reused
without network access. The workflow downloads in a job of its own on the submit host
(:func:`download`); preparing a dataset there reads the cache only (``network=False``), since
the compute nodes of many clusters have no network.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from biv.config.dataset import FILES, UCIConfig, expand, local_hint
from biv.data.local import uci_location

log = logging.getLogger(__name__)

# Published sha256 of the files read (see shared/data/README.md: byte-identical to the UCI zips).
KNOWN_SHA256 = {
    "hour.csv": "e03de4ee4ef4dc376ac6e04bf829673c6269e8eba5c60fa121640fa2f829504f",
    "winequality-red.csv": "4a402cf041b025d4566d954c3b9ba8635a3a8a01e039005d97d6a710278cf05e",
    "winequality-white.csv": "76c3f809815c17c07212622f776311faeb31e87610d52c26d87d6e361b169836",
}
#: Data rows of the published files (those of KNOWN_SHA256): known before a download.
PUBLISHED_ROWS = {"hour.csv": 17379, "winequality-red.csv": 1599, "winequality-white.csv": 4898}
DOWNLOAD_TIMEOUT_S = 60


@dataclass(frozen=True)
class DownloadCache:
    """Where publisher zips are cached, and whether a missing one may be downloaded."""

    folder: str | os.PathLike
    network: bool = True


@dataclass(frozen=True)
class RawFile:
    """One published file's bytes; ``origin`` says where it was read (used in error messages)."""

    name: str
    origin: str
    data: bytes
    sha256: str


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch(
    name: str, cfg: UCIConfig, files: tuple[str, ...], cache: DownloadCache | None
) -> dict[str, RawFile]:
    """Read ``files`` from the config's ``path`` (which wins) or else its ``url`` (through
    ``cache``), and verify their sha256."""
    if cfg.path is not None:
        raw = _read_local(name, uci_location(name, cfg), files)
        _verify(name, raw, cfg.sha256)
        return raw
    return _download(name, cfg.url, files, cache, cfg.sha256)


def records(name: str, cfg: UCIConfig) -> tuple[int, str] | None:
    """The records the files of ``cfg`` hold together and what they are, as the loaders split
    them: a local ``path``'s counted without parsing the values (the loaders check those), a
    download's known where its files are the published ones; None where they are not (checked
    once downloaded)."""
    files = FILES[cfg.kind]
    if cfg.path is not None:
        raw = _read_local(name, uci_location(name, cfg), files)
        what = raw[files[0]].origin if len(files) == 1 else " + ".join(files)
        return sum(count_rows(file.data) for file in raw.values()), what
    if any((cfg.sha256 or {}).get(f, KNOWN_SHA256[f]) != KNOWN_SHA256[f] for f in files):
        return None
    return sum(PUBLISHED_ROWS[f] for f in files), f"the published {' + '.join(files)}"


def count_rows(data: bytes) -> int:
    """The data rows of a CSV file with a header line, as pandas reads them: its non-blank lines
    after the first (the published files quote no line breaks)."""
    return sum(1 for line in data.splitlines()[1:] if line.strip())


def download(datasets: dict[str, UCIConfig], download_dir: str | os.PathLike) -> dict:
    """The workflow's download job: the zip of ``datasets`` (entries with the same ``url``)
    into ``download_dir``, each dataset's files verified; returns the record of what was
    checked (the job's output)."""
    urls = {cfg.url for cfg in datasets.values()}
    if len(urls) != 1:
        raise ValueError(f"one download is one URL, not {sorted(urls)}")
    url = urls.pop()
    checked = {}
    for name, cfg in datasets.items():
        raw = _download(name, url, FILES[cfg.kind], DownloadCache(download_dir), cfg.sha256)
        checked[name] = {f: file.sha256 for f, file in raw.items()}
    target = expand(download_dir) / archive_name(url)
    return {"url": url, "archive": str(target), "sha256": checked}


def _read_local(name: str, path: Path, files: tuple[str, ...]) -> dict[str, RawFile]:
    """``files`` from a location checked by :func:`biv.data.local.uci_location`."""
    if path.is_dir():
        return {f: _raw(f, str(path / f), (path / f).read_bytes()) for f in files}
    if zipfile.is_zipfile(path):
        return _read_zip(name, path, str(path), files)
    return {files[0]: _raw(files[0], str(path), path.read_bytes())}


def _raw(name: str, origin: str, data: bytes) -> RawFile:
    return RawFile(name=name, origin=origin, data=data, sha256=sha256_bytes(data))


def _read_zip(name: str, path: Path, label: str, files: tuple[str, ...]) -> dict[str, RawFile]:
    try:
        with zipfile.ZipFile(path) as zf:
            members: dict[str, list[str]] = {}
            for info in zf.infolist():
                if not info.is_dir() and not info.filename.startswith("__MACOSX/"):
                    members.setdefault(info.filename.rsplit("/", 1)[-1], []).append(info.filename)
            out = {}
            for f in files:
                found = members.get(f, [])
                if len(found) != 1:
                    problem = "has no member" if not found else f"has several members {found} for"
                    hint = local_hint(f"datasets.{name}", files)
                    raise ValueError(f"datasets.{name}: zip {label} {problem} {f}; {hint}")
                out[f] = _raw(f, f"{label}!{found[0]}", zf.read(found[0]))
            return out
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as err:
        raise ValueError(f"datasets.{name}: zip {label} is damaged ({err})") from None


def _verify(name: str, raw: dict[str, RawFile], sha256: dict[str, str] | None) -> None:
    """Compare with ``sha256`` (the config's mapping) or else the built-in published value."""
    for f, file in raw.items():
        want = (sha256 or {}).get(f, KNOWN_SHA256.get(f))
        if want is not None and file.sha256 != want:
            given = f"datasets.{name}.sha256.{f}" if f in (sha256 or {}) else f"the published {f}"
            raise ValueError(
                f"{file.origin}: checksum mismatch, sha256 {file.sha256} but expected {want} "
                f"({given}); the file is damaged or a different version. To use it anyway, "
                f"set datasets.{name}.sha256.{f}: {file.sha256}"
            )


def archive_name(url: str) -> str:
    """The cached zip's file name: the URL's last path segment (other characters than letters,
    digits and ``+-_.`` as ``_``), with ``.zip`` and a digest of the URL added where it has no
    ``.zip`` of its own."""
    base = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
    base = "".join(c if c.isalnum() or c in "+-_." else "_" for c in base).lstrip(".")
    if base.endswith(".zip"):
        return base
    return f"{base or 'download'}-{sha256_bytes(url.encode())[:8]}.zip"


def _download(
    name: str,
    url: str,
    files: tuple[str, ...],
    cache: DownloadCache | None,
    sha256: dict[str, str] | None,
) -> dict[str, RawFile]:
    if cache is None:
        raise ValueError(f"datasets.{name}.url: {url} needs a download folder (download_dir)")
    folder = expand(cache.folder)
    target = folder / archive_name(url)
    problem = "is not there"
    if target.is_file():
        try:
            raw = _read_zip(name, target, str(target), files)
            _verify(name, raw, sha256)
            log.info("datasets.%s: using cached %s", name, target)
            return raw
        except ValueError as err:
            problem = f"is unusable ({err})"
            log.warning("datasets.%s: cached %s %s", name, target, problem)
    if not cache.network:
        raise ValueError(
            f"datasets.{name}.url: the download {target} {problem}, and this job has no "
            f"network (compute nodes often have none): the workflow's download job on the "
            f"submit host fetches it; delete results/downloads/{target.name}.json to run that "
            "job again"
        )
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=folder)
    tmp = Path(tmp_name)
    hint = local_hint(f"datasets.{name}", files)
    try:
        log.info("datasets.%s: downloading %s", name, url)
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                    shutil.copyfileobj(response, out, 1 << 20)
            except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
                plain = isinstance(err, urllib.error.HTTPError) or not hasattr(err, "reason")
                reason = err if plain else err.reason
                raise ValueError(
                    f"datasets.{name}.url: could not download {url} ({reason}); {hint}"
                ) from None
        if not zipfile.is_zipfile(tmp):
            raise ValueError(f"datasets.{name}.url: {url} did not return a zip archive; {hint}")
        raw = _read_zip(name, tmp, url, files)
        _verify(name, raw, sha256)
        os.replace(tmp, target)
        return raw
    finally:
        tmp.unlink(missing_ok=True)
