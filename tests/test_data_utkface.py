"""UTKFace on a few hundred real images (symlinked from $BIV_DATA_DIR): decoding, split,
statistics, checksums and bad inputs."""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from biv.data import load_prepared, prepare

IRREGULAR = [
    "24_0_1_20170116220224657 .jpg.chip.jpg",
    "55_0_0_20170116232725357jpg.chip.jpg",
    "39_1_20170116174525125.jpg.chip.jpg",
    "61_1_20170109142408075.jpg.chip.jpg",
    "61_1_20170109150557335.jpg.chip.jpg",
]
TENSORS = ("x_train", "y_train", "x_test", "y_test", "x_mean", "x_std", "train_index", "test_index")


@pytest.fixture(scope="module")
def subset(data_dir, tmp_path_factory) -> Path:
    """Every 80th published image plus the five irregular names (302 images), as symlinks."""
    source = data_dir / "utkface"
    names = sorted(p.name for p in source.iterdir())[::80] + IRREGULAR
    folder = tmp_path_factory.mktemp("utk") / "faces"
    folder.mkdir()
    for name in names:
        (folder / name).symlink_to(source / name)
    return folder


def run(tmp_path, cfg, name="faces", **kwargs) -> dict:
    out = tmp_path / f"{name}-{len(list(tmp_path.iterdir()))}.npz"
    prepare(name, {"kind": "utkface", **cfg}, out, **kwargs)
    return load_prepared(out)


def test_native_decode_labels_and_train_stats(subset, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="biv.data"):
        d = run(tmp_path, {"path": str(subset), "train_size": 200, "test_size": 90})
    n = len(list(subset.iterdir()))
    assert any(f"{n}/{n} images (100 %)" in r.getMessage() for r in caplog.records)
    assert d["x_train"].shape == (200, 3, 200, 200) and d["x_train"].dtype == torch.uint8
    assert d["x_test"].shape == (90, 3, 200, 200) and d["y_test"].dtype == torch.float32
    meta = d["meta"]
    files = meta["files"].split("\n")
    assert files == sorted(p.name for p in subset.iterdir()) and len(files) == n == 302
    assert set(IRREGULAR) <= set(files)
    assert meta["image_size"] == 200 and (meta["n_train"], meta["n_test"]) == (200, 90)
    assert not meta["listing_matches_published_set"] and not meta["per_file_sha256_checked"]
    assert "image_size" not in meta["config"]  # None values are left out of meta
    assert isinstance(meta["files"], str) and isinstance(meta["sources"][0]["sha256"], str)
    for split in ("train", "test"):
        names = [files[i] for i in d[f"{split}_index"].tolist()]
        ages = [float(n.split("_")[0]) for n in names]
        assert d[f"y_{split}"].tolist() == ages
    assert not set(d["train_index"].tolist()) & set(d["test_index"].tolist())
    first = files[d["test_index"][0]]
    pixels = np.asarray(Image.open(subset / first).convert("RGB")).transpose(2, 0, 1)
    assert np.array_equal(d["x_test"][0].numpy(), pixels)
    x = d["x_train"].numpy()
    mean = [x[:, c].mean(dtype=np.float64) / 255 for c in range(3)]
    std = [x[:, c].astype(np.float64).std() / 255 for c in range(3)]
    np.testing.assert_allclose(d["x_mean"], mean, rtol=1e-6)
    np.testing.assert_allclose(d["x_std"], std, rtol=1e-6)
    ages = d["y_train"].double()
    assert d["y_mean"] == pytest.approx(ages.mean().item())
    assert d["y_std"] == pytest.approx(ages.std(unbiased=False).item())
    assert d["y_mean"] != pytest.approx(torch.cat([d["y_train"], d["y_test"]]).mean().item())


def test_resized_deterministic_and_checksummed(subset, data_dir, tmp_path):
    cfg = {
        "path": str(subset),
        "train_size": 150,
        "test_size": 150,
        "image_size": 32,
        "split_seed": 3,
        "sha256": str(data_dir / "utkface.SHA256SUMS"),
    }
    a = run(tmp_path, cfg, workers=1)
    b = run(tmp_path, cfg, workers=2)
    for key in TENSORS:
        x, y = a[key], b[key]
        assert (x.dtype, x.shape) == (y.dtype, y.shape), key
        assert x.numpy().tobytes() == y.numpy().tobytes(), key  # byte-identical
    assert a["x_train"].shape == (150, 3, 32, 32)
    assert a["meta"]["per_file_sha256_checked"] and a["meta"]["image_size"] == 32
    name = a["meta"]["files"].split("\n")[a["train_index"][0]]
    native = np.asarray(Image.open(subset / name).convert("RGB"), dtype=np.float64)
    small = a["x_train"][0].double().mean(dim=(1, 2)).numpy()
    np.testing.assert_allclose(small, native.mean(axis=(0, 1)), atol=3)  # antialiased resize


@pytest.fixture
def copies(data_dir, tmp_path) -> Path:
    """A writable folder with real copies of six images."""
    folder = tmp_path / "copies"
    folder.mkdir()
    for name in sorted(p.name for p in (data_dir / "utkface").iterdir())[:6]:
        shutil.copyfile(data_dir / "utkface" / name, folder / name)
    return folder


def assert_fails(tmp_path, cfg, match, exc=ValueError):
    out = tmp_path / "out" / "faces.npz"
    with pytest.raises(exc, match=match):
        prepare("faces", {"kind": "utkface", "train_size": 3, "test_size": 2, **cfg}, out)
    assert not out.parent.exists()


def test_bad_images(copies, tmp_path):
    cfg = {"path": str(copies), "train_size": 5}  # with the bad image added: all 7 are used
    data = sorted(copies.iterdir())[0].read_bytes()
    (copies / "30_0_0_20170101000000000.jpg.chip.jpg").write_bytes(b"not a jpeg")
    assert_fails(tmp_path, cfg, r"30_0_0_20170101000000000\.jpg\.chip\.jpg: image does not decode")
    (copies / "30_0_0_20170101000000000.jpg.chip.jpg").write_bytes(data[: len(data) // 2])
    assert_fails(tmp_path, cfg, r"30_0_0_2017\S+: image does not decode \(image file is truncated")
    (copies / "30_0_0_20170101000000000.jpg.chip.jpg").unlink()
    Image.new("RGB", (100, 100)).save(copies / "31_0_0_20170101000000000.jpg.chip.jpg")
    assert_fails(tmp_path, cfg, r"images differ in size: .*31_0_0_2017\S+ is 100x100 pixels")
    prepare("faces", {"kind": "utkface", "path": str(copies), "train_size": 6, "test_size": 1,
                      "image_size": 16}, tmp_path / "ok.npz")  # fmt: skip
    assert load_prepared(tmp_path / "ok.npz")["x_train"].shape == (6, 3, 16, 16)


def test_bad_age_sizes_and_folders(copies, tmp_path):
    cfg = {"path": str(copies)}
    assert_fails(
        tmp_path, {**cfg, "train_size": 5}, r"train_size: 5 \+ test_size 2 = 7 exceeds the 6"
    )
    (copies / "abc_0_0_20170101000000000.jpg.chip.jpg").write_bytes(b"")
    assert_fails(tmp_path, cfg, r"abc_0_0_2017\S+: age 'abc' does not parse")
    page = r"susanqq\.github\.io/UTKFace.*datasets\.faces\.path"
    assert_fails(tmp_path, {"path": str(tmp_path / "none")}, "none' is not a folder; .*" + page)
    (tmp_path / "empty").mkdir()
    assert_fails(tmp_path, {"path": str(tmp_path / "empty")}, "no .jpg files.*" + page)


def test_checksums(copies, tmp_path):
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in copies.iterdir()}
    target = sorted(digests)[2]
    with open(copies / target, "ab") as f:
        f.write(b"extra")  # still decodes, but the bytes changed
    cfg = {"path": str(copies), "sha256": digests}
    assert_fails(tmp_path, cfg, rf"{target}: checksum mismatch, sha256 \w+ but expected")
    listing = tmp_path / "sums.txt"
    listing.write_text("".join(f"{d}  utkface/{n}\n" for n, d in digests.items() if n != target))
    cfg = {"path": str(copies), "sha256": str(listing)}
    assert_fails(tmp_path, cfg, rf"{target}: no checksum for this file in datasets\.faces\.sha256")
    listing.write_text("nonsense\n")
    assert_fails(tmp_path, cfg, r"sums\.txt line 1: 'nonsense' is not")
