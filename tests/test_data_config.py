"""Strict validation of dataset configs: every bad entry fails before anything is written."""

from __future__ import annotations

import pytest

from biv.data import prepare, validate

BIKE = {"kind": "bike", "path": "/nonexistent", "train_size": 10, "test_size": 5}
UTK = {"kind": "utkface", "path": "/nonexistent", "train_size": 10, "test_size": 5}
SYN = {"kind": "synthetic", "n_train": 10, "n_test": 5, "seed": 0}
HEX = "ab" * 32


@pytest.mark.parametrize(
    ("cfg", "needles"),
    [
        ({**BIKE, "trainsize": 3}, ["datasets.ds.trainsize", "3", "no such key"]),
        ({**SYN, "split_seed": 1}, ["datasets.ds.split_seed", "1", "vary seed instead"]),
        ({**SYN, "train_size": 1}, ["datasets.ds.train_size", "no such key"]),
        ({**SYN, "path": "/x"}, ["datasets.ds.path", "no such key"]),
        ({k: v for k, v in BIKE.items() if k != "test_size"}, ["datasets.ds.test_size", "missing"]),
        ({k: v for k, v in SYN.items() if k != "seed"}, ["datasets.ds.seed", "missing"]),
        ({**BIKE, "kind": "bikes"}, ["datasets.ds.kind", "'bikes'", "synthetic"]),
        ({**BIKE, "train_size": 10.0}, ["datasets.ds.train_size", "10.0", "integer"]),
        ({**BIKE, "train_size": True}, ["datasets.ds.train_size", "True", "integer"]),
        ({**BIKE, "test_size": 0}, ["datasets.ds.test_size", "0", ">= 1"]),
        ({**BIKE, "split_seed": -1}, ["datasets.ds.split_seed", "-1", ">= 0"]),
        ({**BIKE, "split_seed": "0"}, ["datasets.ds.split_seed", "'0'"]),
        ({**SYN, "n_features": 5}, ["datasets.ds.n_features", "5", ">= 8"]),
        ({**UTK, "image_size": "64"}, ["datasets.ds.image_size", "'64'"]),
        ({**BIKE, "path": None, "url": "ftp://x/y.zip"}, ["datasets.ds.url", "ftp://x/y.zip"]),
        ({**BIKE, "path": 3}, ["datasets.ds.path", "3"]),
        ({k: v for k, v in BIKE.items() if k != "path"}, ["datasets.ds", "path", "url"]),
        ({**BIKE, "sha256": "abc"}, ["datasets.ds.sha256", "'abc'", "mapping"]),
        ({**BIKE, "sha256": {"hour.csv": "xyz"}}, ["datasets.ds.sha256.hour.csv", "'xyz'"]),
        ({**BIKE, "sha256": {"day.csv": HEX}}, ["datasets.ds.sha256.day.csv", "hour.csv"]),
        ({**UTK, "url": "https://x/y.zip"}, ["datasets.ds.url", "susanqq.github.io", "ds.path"]),
        ({**UTK, "path": None}, ["datasets.ds.path", "https://susanqq.github.io/UTKFace/"]),
        ({"kind": "utkface", "train_size": 1, "test_size": 1}, ["https://susanqq.github.io"]),
        (["kind", "bike"], ["datasets.ds", "mapping"]),
    ],
)
def test_bad_config_fails_before_writing(tmp_path, cfg, needles):
    out = tmp_path / "out.pt"
    with pytest.raises(ValueError) as err:
        prepare("ds", cfg, out, tmp_path / "dl")
    for needle in needles:
        assert needle in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_defaults_filled_and_nothing_coerced():
    cfg = validate("b", {**BIKE, "sha256": {"hour.csv": HEX.upper()}})
    assert cfg["split_seed"] == 0 and cfg["url"] is None
    assert cfg["sha256"] == {"hour.csv": HEX}
    assert validate("s", SYN)["n_features"] == 8
    assert validate("u", UTK)["image_size"] is None
    assert validate("u", {**UTK, "sha256": "~/list.txt"})["sha256"] == "~/list.txt"


def test_utkface_url_names_project_page(tmp_path):
    with pytest.raises(ValueError, match=r"susanqq\.github\.io/UTKFace.*datasets\.faces\.path"):
        prepare("faces", {**UTK, "path": None, "url": "https://x/UTKFace.tar.gz"}, tmp_path / "o")
