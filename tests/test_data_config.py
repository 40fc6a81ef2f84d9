"""Strict validation of dataset configs: every bad entry fails before anything is written."""

from __future__ import annotations

import json

import pytest

from biv.config.dataset import (
    BikeConfig,
    SyntheticConfig,
    TableConfig,
    UTKFaceConfig,
    WineConfig,
    parse,
)
from biv.data import prepare

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
        ({**BIKE, "split_seed": "0"}, ["datasets.ds.split_seed", "'0'", "or 'run'"]),
        ({**BIKE, "split_seed": "runs"}, ["datasets.ds.split_seed", "'runs'", "its own seed"]),
        ({**SYN, "split_seed": "run"}, ["datasets.ds.split_seed", "'run'", "vary seed instead"]),
        ({**BIKE, "split_seed": "run"}, ["datasets.ds.split_seed", "'run'", "one split"]),
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
    out = tmp_path / "out.npz"
    with pytest.raises(ValueError) as err:
        prepare("ds", cfg, out, tmp_path / "dl")
    for needle in needles:
        assert needle in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_defaults_filled_and_nothing_coerced():
    cfg = parse("b", {**BIKE, "sha256": {"hour.csv": HEX.upper()}})
    assert cfg.split_seed == 0 and cfg.url is None
    assert cfg.sha256 == {"hour.csv": HEX}
    assert parse("s", SYN).n_features == 8
    assert parse("u", UTK).image_size is None
    assert parse("u", {**UTK, "sha256": "~/list.txt"}).sha256 == "~/list.txt"


TABLE = {"kind": "table", "path": "t.csv", "target": "y", "test_size": 0.25}


@pytest.mark.parametrize(
    ("cfg", "cls", "keys"),
    [
        (SYN, SyntheticConfig, ["kind", "n_train", "n_test", "seed", "n_features", "split_seed"]),
        (
            BIKE,
            BikeConfig,
            ["kind", "train_size", "test_size", "split_seed", "sha256", "path", "url"],
        ),
        (
            {**BIKE, "kind": "wine"},
            WineConfig,
            ["kind", "train_size", "test_size", "split_seed", "sha256", "path", "url"],
        ),
        (
            UTK,
            UTKFaceConfig,
            ["kind", "train_size", "test_size", "split_seed", "sha256", "path", "image_size"],
        ),
        (
            {**TABLE, "features": ["a", "b"], "categorical": ["c"]},
            TableConfig,
            [
                "kind",
                "path",
                "target",
                "variance",
                "clean_target",
                "features",
                "categorical",
                "test_size",
                "split",
                "split_seed",
                "sha256",
            ],
        ),
    ],
)
def test_each_kind_parses_into_its_typed_config_and_back(cfg, cls, keys):
    """One frozen class per kind; to_dict gives every key of the kind in a fixed order (the
    prepare rule's params), and parsing that (or its JSON) gives the same config again."""
    typed = parse("ds", cfg)
    assert type(typed) is cls and typed.kind == cfg["kind"]
    plain = typed.to_dict()
    assert list(plain) == keys
    assert {k: v for k, v in plain.items() if k in cfg} == cfg
    assert parse("ds", plain) == typed and parse("ds", json.loads(json.dumps(plain))) == typed
    with pytest.raises(AttributeError):
        typed.kind = "other"


def test_table_lists_are_tuples_in_the_config_and_lists_in_its_dict():
    typed = parse("t", {**TABLE, "features": ["a", "b"]})
    assert (typed.features, typed.categorical) == (("a", "b"), ())
    assert (typed.to_dict()["features"], typed.to_dict()["categorical"]) == (["a", "b"], [])


def test_image_side_is_the_native_size_unless_resized():
    assert parse("u", UTK).image_side == 200
    assert parse("u", {**UTK, "image_size": 64}).image_side == 64


def test_utkface_url_names_project_page(tmp_path):
    with pytest.raises(ValueError, match=r"susanqq\.github\.io/UTKFace.*datasets\.faces\.path"):
        prepare("faces", {**UTK, "path": None, "url": "https://x/UTKFace.tar.gz"}, tmp_path / "o")


@pytest.mark.parametrize(
    "cfg",
    [BIKE, {**BIKE, "kind": "wine"}, UTK, TABLE],
)
def test_split_seed_run_splits_each_run_with_its_seed(cfg):
    """``split_seed: run``: the entry says so, and each run's split is the entry with its seed
    as split_seed (everything else equal)."""
    typed = parse("ds", {**cfg, "split_seed": "run"})
    assert typed.split_per_run and not parse("ds", cfg).split_per_run
    one = typed.split_with(7)
    assert one == parse("ds", {**cfg, "split_seed": 7}) and not one.split_per_run


def test_split_seed_run_needs_a_seeded_split():
    with pytest.raises(ValueError, match=r"^datasets.ds.split_seed: 'run' .*split column"):
        parse("ds", {**TABLE, "test_size": None, "split": "part", "split_seed": "run"})
