"""UTKFace "Aligned&Cropped Faces": a folder of ``age_gender_race_datetime.jpg[.chip.jpg]`` JPEGs.

Only a local folder (``path``; ``~`` and ``$VARS`` expanded) is supported: UTKFace has no stable
download URL (project page: https://susanqq.github.io/UTKFace/). Every ``*.jpg`` file of the folder
(not hidden, not recursive) is used; the label is the age, the integer before the first ``_``
(this also covers the five irregular published names). Names are sorted (byte order) and split by
a seeded permutation (``train_index``/``test_index`` = position in ``meta["files"]``, the
newline-separated sorted names). Each selected image is decoded once, in worker threads, straight
into uint8 arrays (N, 3, H, W): native size, or ``image_size`` x ``image_size`` (JPEG DCT-domain
reduction with ``Image.draft`` to at least that size, then an antialiased bilinear
``Image.resize``). Pixel mean/std per channel come from exact integer sums over the train images.

Checksums: every file is hashed while it is read. ``sha256`` in the config may map file names to
digests, or give the path of a sha256sum-format listing (``<hex>  [folder/]<name>`` per line, as
``utkface.SHA256SUMS``); each image is then checked. In any case the meta records the sha256 of
the sorted listing ``<hex>  utkface/<name>`` of all images found, and whether it equals that of
the published set of 23,708 images.
"""

from __future__ import annotations

import hashlib
import io
import logging
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from biv.config.dataset import UTKFaceConfig
from biv.data.local import checksum_listing, image_files
from biv.data.prepared import assemble, split_indices

log = logging.getLogger(__name__)

# sha256 of the sorted listing "<sha256>  utkface/<name>\n" of the 23,708 published images.
PUBLISHED_LISTING_SHA256 = "4dc3c71f1592a21d5d336ea21422b385ccb6552df7e15b8206676c8d4b25e016"
CHUNK = 128


def list_images(name: str, cfg: UTKFaceConfig) -> tuple[Path, list[str], np.ndarray]:
    """The folder, its sorted ``*.jpg`` names and their ages; ValueError for an unparsable age."""
    folder, names = image_files(name, cfg)
    names.sort(key=lambda n: n.encode())
    fields = pd.Series(names).str.split("_", n=1).str[0]
    bad = ~fields.str.fullmatch(r"\d+").to_numpy(dtype=bool)
    if bad.any():
        file = names[int(np.argmax(bad))]
        raise ValueError(
            f"{folder / file}: age {file.split('_')[0]!r} does not parse; expected file names "
            "'<age>_<gender>_<race>_<datetime>.jpg...' with an integer age"
        )
    return folder, names, fields.astype(np.int64).to_numpy()


def read_listing(name: str, listing: Path) -> dict[str, str]:
    """{file name: sha256} from a sha256sum-format file (folder prefixes are dropped)."""
    try:
        lines = listing.read_text().splitlines()
    except OSError as err:
        raise FileNotFoundError(f"datasets.{name}.sha256: cannot read {listing} ({err})") from None
    out = {}
    for number, line in enumerate(lines, 1):
        parts = line.split(None, 1)
        if len(parts) != 2 or len(parts[0]) != 64:
            raise ValueError(
                f"datasets.{name}.sha256: {listing} line {number}: {line[:80]!r} is not "
                "'<sha256>  <file>'"
            )
        out[parts[1].lstrip("*").rsplit("/", 1)[-1]] = parts[0].lower()
    return out


class _Progress:
    """A tqdm bar on a terminal, otherwise a log line about every 10 % of the work."""

    def __init__(self, total: int, desc: str):
        self.total, self.desc, self.done, self.start = total, desc, 0, time.monotonic()
        self.bar = tqdm(total=total, desc=desc, unit="img") if sys.stderr.isatty() else None
        self.next_log = total / 10

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.done >= self.next_log or self.done == self.total:
            self.next_log += self.total / 10
            log.info(
                "%s: %d/%d images (%.0f %%), %.1f s",
                self.desc,
                self.done,
                self.total,
                100 * self.done / self.total,
                time.monotonic() - self.start,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _native_size(path: Path) -> tuple[int, int]:
    """(height, width) from the image header (nothing decoded); square images only."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"{path}: image does not decode ({err})") from None
    if height != width:
        raise ValueError(
            f"{path}: native images are {width}x{height} pixels, not square; set image_size"
        )
    return height, width


def _decode(path: Path, data: bytes, size: int | None) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data)) as image:
            if size is not None:
                image.draft("RGB", (size, size))
            rgb = image.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ValueError(f"{path}: image does not decode ({err})") from None
    if size is not None and rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
    return rgb


class _Decoder:
    """Reads and hashes chunks of files, decodes the selected ones straight into the outputs.

    ``dest[i]`` = (split, position): split 0 train, 1 test, -1 not used. ``run`` returns the
    chunk's per-channel pixel-value histogram (3, 256) over its train images."""

    def __init__(self, name, folder, names, dest, outputs, size, expected, reference):
        self.name, self.folder, self.names = name, folder, names
        self.dest, self.outputs = dest, outputs
        self.size, self.expected, self.reference = size, expected, reference
        self.height, self.width = outputs[0].shape[2:]
        self.digests = [""] * len(names)

    def run(self, indices: range) -> np.ndarray:
        counts = np.zeros(3 * 256, dtype=np.int64)
        for i in indices:
            path = self.folder / self.names[i]
            data = path.read_bytes()
            self.digests[i] = hashlib.sha256(data).hexdigest()
            if self.expected is not None:
                self._check(path, self.digests[i], self.expected.get(self.names[i]))
            split, position = self.dest[i]
            if split < 0:
                continue
            rgb = _decode(path, data, self.size)
            if rgb.size != (self.width, self.height):
                raise ValueError(
                    f"images differ in size: {path} is {rgb.width}x{rgb.height} pixels, "
                    f"{self.reference} is {self.width}x{self.height}; set "
                    f"datasets.{self.name}.image_size to resize every image"
                )
            self.outputs[split][position] = np.asarray(rgb).transpose(2, 0, 1)
            if split == 0:
                counts += rgb.histogram()
        return counts.reshape(3, 256)

    def _check(self, path: Path, digest: str, want: str | None) -> None:
        if want is None:
            raise ValueError(f"{path}: no checksum for this file in datasets.{self.name}.sha256")
        if want != digest:
            raise ValueError(
                f"{path}: checksum mismatch, sha256 {digest} but expected {want} "
                f"(datasets.{self.name}.sha256)"
            )


def _channel_stats(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact per-channel mean/std in [0, 1] units from (3, 256) pixel-value counts."""
    levels = np.arange(256, dtype=np.int64)
    n = counts.sum(axis=1)
    total, squares = counts @ levels, counts @ levels**2
    mean = [int(t) / int(k) / 255 for t, k in zip(total, n, strict=True)]
    var = [
        (int(q) * int(k) - int(t) ** 2) / int(k) ** 2 / 255**2
        for t, q, k in zip(total, squares, n, strict=True)
    ]
    std = [v**0.5 if v > 0 else 1.0 for v in var]
    return np.array(mean, dtype=np.float32), np.array(std, dtype=np.float32)


def prepare(name: str, cfg: UTKFaceConfig, workers: int) -> dict:
    """Decode and split the images per ``cfg`` (``workers`` threads)."""
    folder, names, ages = list_images(name, cfg)
    listing = checksum_listing(name, cfg)
    expected = read_listing(name, listing) if listing is not None else cfg.sha256
    train, test = split_indices(
        name,
        len(names),
        cfg.train_size,
        cfg.test_size,
        cfg.split_seed,
        f"{len(names)} images in {folder}",
    )
    size = cfg.image_size
    reference = folder / names[int(train[0])]
    if size is None:
        height, width = _native_size(reference)
    else:
        height = width = size
    dest = np.full((len(names), 2), -1, dtype=np.int64)
    dest[train] = np.stack([np.zeros_like(train), np.arange(len(train))], axis=1)
    dest[test] = np.stack([np.ones_like(test), np.arange(len(test))], axis=1)
    outputs = [np.empty((len(idx), 3, height, width), dtype=np.uint8) for idx in (train, test)]
    decoder = _Decoder(name, folder, names, dest, outputs, size, expected, reference)
    counts = _run(decoder, len(names), workers, f"datasets.{name}: decoding UTKFace")
    listing = "".join(f"{d}  utkface/{n}\n" for d, n in zip(decoder.digests, names, strict=True))
    listing_sha = hashlib.sha256(listing.encode()).hexdigest()
    meta = {
        "dataset": name,
        "kind": "utkface",
        "sources": [
            {
                "file": f"{folder.name}/*.jpg ({len(names)} images)",
                "sha256": listing_sha,
                "origin": str(folder),
                "listing": "sha256 of the sorted lines '<sha256>  utkface/<name>' of all images",
            }
        ],
        "listing_matches_published_set": listing_sha == PUBLISHED_LISTING_SHA256,
        "per_file_sha256_checked": expected is not None,
        "split_seed": cfg.split_seed,
        "image_size": height,
        "resize": "none" if size is None else "PIL draft + antialiased bilinear resize",
        "target": "age",
        "files": "\n".join(names),
        "index": "position in meta['files'] (sorted names, newline-separated)",
        "config": cfg.to_dict(),
    }
    return assemble(
        outputs[0],
        ages[train].astype(np.float32),
        outputs[1],
        ages[test].astype(np.float32),
        train,
        test,
        meta,
        x_stats=_channel_stats(counts),
    )


def _run(decoder: _Decoder, total: int, workers: int, desc: str) -> np.ndarray:
    """Run ``decoder`` over all files in chunks on ``workers`` threads; sum the histograms."""
    progress = _Progress(total, desc)
    counts = np.zeros((3, 256), dtype=np.int64)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = {
            pool.submit(decoder.run, range(start, min(start + CHUNK, total))): min(
                CHUNK, total - start
            )
            for start in range(0, total, CHUNK)
        }
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    counts += future.result()
                    progress.update(pending.pop(future))
        finally:
            for future in pending:
                future.cancel()
            progress.close()
    return counts
