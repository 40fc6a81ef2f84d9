"""Bike Sharing and Wine Quality on the real files: features, split, statistics, bad inputs."""

from __future__ import annotations

import hashlib
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from biv.data import load_prepared, prepare, sources
from biv.data.bike import FEATURE_NAMES as BIKE_FEATURES
from biv.data.wine import FEATURE_NAMES as WINE_FEATURES

BIKE = {"kind": "bike", "train_size": 14000, "test_size": 3379}  # 17379 rows: all of them
WINE = {"kind": "wine", "train_size": 4006, "test_size": 2491}  # 6497 rows: all of them
TENSORS = ("x_train", "y_train", "x_test", "y_test", "x_mean", "x_std", "train_index", "test_index")


def run(tmp_path: Path, cfg: dict, name: str = "ds") -> dict:
    out = tmp_path / f"{name}.npz"
    prepare(name, cfg, out, tmp_path / "downloads")
    return load_prepared(out)


def by_row(d: dict) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels ordered by source row (train and test together)."""
    index = torch.cat([d["train_index"], d["test_index"]]).numpy()
    x = torch.cat([d["x_train"], d["x_test"]]).numpy()
    y = torch.cat([d["y_train"], d["y_test"]]).numpy()
    order = np.argsort(index)
    assert (index[order] == np.arange(len(index))).all()
    return x[order], y[order]


def assert_fails(tmp_path, cfg, match, exc=ValueError, name="ds"):
    out = tmp_path / "out" / "o.npz"
    with pytest.raises(exc, match=match):
        prepare(name, cfg, out, tmp_path / "dl")
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def bike(data_dir, tmp_path_factory):
    return run(tmp_path_factory.mktemp("bike"), {**BIKE, "path": str(data_dir / "bike-sharing")})


@pytest.fixture(scope="module")
def hour_csv(data_dir) -> bytes:
    return (data_dir / "bike-sharing" / "hour.csv").read_bytes()


def test_bike_shapes_and_meta(bike):
    assert bike["x_train"].shape == (14000, 19) and bike["x_test"].shape == (3379, 19)
    assert bike["x_train"].dtype == torch.float32 and bike["y_test"].dtype == torch.float32
    assert bike["x_mean"].shape == bike["x_std"].shape == (19,)
    meta = bike["meta"]
    assert meta["feature_names"] == BIKE_FEATURES and len(BIKE_FEATURES) == 19
    assert meta["sources"][0]["file"] == "hour.csv"
    assert meta["sources"][0]["sha256"].startswith("e03de4ee")
    assert (meta["n_train"], meta["n_test"], meta["split_seed"]) == (14000, 3379, 0)
    assert isinstance(meta["preprocessing_version"], int)
    assert isinstance(bike["y_mean"], float) and isinstance(bike["y_std"], float)


def plain(value) -> bool:
    """Only str/int/float/bool/list/dict, recursively (the prepared file's meta types)."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(plain(v) for v in value)
    return isinstance(value, str | int | float | bool)


def test_meta_types(bike, wine):
    assert plain(bike["meta"]) and plain(wine["meta"])
    assert bike["meta"]["config"] == {
        **BIKE,
        "split_seed": 0,
        "path": bike["meta"]["config"]["path"],
    }


@pytest.mark.parametrize(
    ("row", "date_days", "hour", "weekday", "rest", "cnt"),
    [
        (0, 0, 0, 6, [0, 0, 1, 0.24, 0.2879, 0.81, 0.0], 16),  # 2011-01-01 00h, Saturday
        (7998, 337, 22, 0, [0, 0, 1, 0.34, 0.3485, 0.87, 0.1045], 64),  # 2011-12-04 22h
        (17378, 730, 23, 1, [0, 1, 1, 0.26, 0.2727, 0.65, 0.1343], 49),  # 2012-12-31 23h
    ],
)
def test_bike_features_on_known_rows(bike, row, date_days, hour, weekday, rest, cnt):
    x, y = by_row(bike)
    year = 0 if date_days < 365 else 1
    angle = 4 * math.pi * date_days / 730
    expected = [year, math.sin(angle), math.cos(angle)]
    expected += [math.sin(2 * math.pi * hour / 24), math.cos(2 * math.pi * hour / 24)]
    expected += [1.0 if d == weekday else 0.0 for d in range(7)] + rest
    np.testing.assert_allclose(x[row], np.float32(expected), atol=1e-6)
    assert y[row] == cnt


def test_bike_stats_from_train_split_only(bike):
    x_train = bike["x_train"].double()
    np.testing.assert_allclose(bike["x_mean"], x_train.mean(0), rtol=1e-6)
    std = x_train.std(0, unbiased=False)
    np.testing.assert_allclose(bike["x_std"], torch.where(std == 0, 1, std), rtol=1e-6)
    y = bike["y_train"].double()
    assert bike["y_mean"] == pytest.approx(y.mean().item(), rel=1e-12)
    assert bike["y_std"] == pytest.approx(y.std(unbiased=False).item(), rel=1e-12)
    everything = torch.cat([bike["y_train"], bike["y_test"]]).double().mean().item()
    assert bike["y_mean"] != pytest.approx(everything, rel=1e-6)


def test_bike_split_seeded_and_test_set_independent_of_train_size(bike, data_dir, tmp_path):
    cfg = {**BIKE, "path": str(data_dir / "bike-sharing"), "train_size": 7000}
    small = run(tmp_path, cfg)
    assert torch.equal(small["test_index"], bike["test_index"])
    assert torch.equal(small["train_index"], bike["train_index"][:7000])
    other = run(tmp_path, {**cfg, "split_seed": 1})
    assert not torch.equal(other["test_index"], small["test_index"])


def test_bike_deterministic_and_sources_equivalent(bike, data_dir, tmp_path, monkeypatch):
    folder = data_dir / "bike-sharing"
    archive = tmp_path / "bike+sharing+dataset.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in ("Readme.txt", "day.csv", "hour.csv"):
            zf.write(folder / f, f)
    monkeypatch.setenv("BIKE_DIR", str(folder))
    monkeypatch.setenv("HOME", str(tmp_path))
    for path in ("$BIKE_DIR", "${BIKE_DIR}/hour.csv", "~/bike+sharing+dataset.zip"):
        again = run(tmp_path, {**BIKE, "path": path})
        for key in TENSORS:
            x, y = again[key], bike[key]
            assert (x.dtype, x.shape) == (y.dtype, y.shape), key
            assert x.numpy().tobytes() == y.numpy().tobytes(), key  # byte-identical
        assert again["y_mean"] == bike["y_mean"] and again["y_std"] == bike["y_std"]
        assert again["meta"]["sources"][0]["sha256"] == bike["meta"]["sources"][0]["sha256"]


def write_bike(tmp_path: Path, data: bytes) -> dict:
    folder = tmp_path / "bike"
    folder.mkdir(exist_ok=True)
    (folder / "hour.csv").write_bytes(data)
    return {**BIKE, "train_size": 100, "test_size": 50, "path": str(folder)}


def test_bike_missing_file(tmp_path):
    (tmp_path / "empty").mkdir()
    cfg = {**BIKE, "path": str(tmp_path / "empty")}
    assert_fails(tmp_path, cfg, r"^datasets\.ds\.path: '.*empty' holds no hour\.csv; to use a")
    cfg = {**BIKE, "path": str(tmp_path / "nope")}
    assert_fails(tmp_path, cfg, r"^datasets\.ds\.path: '.*nope' does not exist")


def test_bike_checksum_mismatch(tmp_path, hour_csv):
    cfg = write_bike(tmp_path, hour_csv.replace(b",0.24,", b",0.25,", 1))
    assert_fails(
        tmp_path, cfg, r"bike/hour\.csv: checksum mismatch.*datasets\.ds\.sha256\.hour\.csv"
    )
    bad = {**cfg, "sha256": {"hour.csv": "0" * 64}}
    assert_fails(tmp_path, bad, r"checksum mismatch.*expected 0000+ \(datasets\.ds\.sha256\.hour")


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (
            lambda d: d.replace(b",weekday,", b",wkday,"),
            r"hour\.csv: missing column\(s\) \['weekday'\]",
        ),
        (lambda d: d.replace(b",", b";"), r"hour\.csv: missing column.*semicolon-separated"),
        (lambda d: d[: len(d) // 2], r"hour\.csv: line 8795, column '\w+' is empty \(truncated"),
        (
            lambda d: d.replace(b",0.24,", b",abc,", 1),
            r"hour\.csv: line 2, column 'temp': 'abc' is",
        ),
        (lambda d: d.replace(b",1,0,1,0,0,6,", b",1,0,1,0,0,9,", 1), r"line 2, column 'weekday'"),
        (lambda d: d.replace(b"2011-01-01", b"2011-13-01", 1), r"line 2, column 'dteday'"),
        (lambda d: d.replace(b",0.24,", b",0.24,1,", 1), r"hour\.csv: not a valid comma-separated"),
        (lambda d: d.split(b"\n")[0], r"hour\.csv: the file has a header but no data rows"),
    ],
)
def test_bike_bad_csv(tmp_path, hour_csv, edit, match):
    data = edit(hour_csv)
    cfg = {**write_bike(tmp_path, data), "sha256": {"hour.csv": sha(data)}}
    assert_fails(tmp_path, cfg, match)


def test_path_wins_over_url(tmp_path, data_dir):
    cfg = {**BIKE, "path": str(data_dir / "bike-sharing"), "url": "http://127.0.0.1:9/x.zip"}
    assert run(tmp_path, cfg)["x_train"].shape == (14000, 19)  # no download attempted
    assert not (tmp_path / "downloads").exists()


def test_published_files_have_the_rows_the_plan_counts_on(data_dir):
    for folder, name in (
        ("bike-sharing", "hour.csv"),
        ("wine-quality", "winequality-red.csv"),
        ("wine-quality", "winequality-white.csv"),
    ):
        data = (data_dir / folder / name).read_bytes()
        assert sources.sha256_bytes(data) == sources.KNOWN_SHA256[name]
        assert sources.count_rows(data) == sources.PUBLISHED_ROWS[name]


def test_bike_train_plus_test_too_large(tmp_path, data_dir):
    cfg = {**BIKE, "path": str(data_dir / "bike-sharing"), "train_size": 14001}
    assert_fails(tmp_path, cfg, r"train_size: 14001 \+ test_size 3379 = 17380 exceeds the 17379")


@pytest.fixture(scope="module")
def wine(data_dir, tmp_path_factory):
    return run(tmp_path_factory.mktemp("wine"), {**WINE, "path": str(data_dir / "wine-quality")})


def test_wine(wine):
    assert wine["x_train"].shape == (4006, 11) and wine["x_test"].shape == (2491, 11)
    meta = wine["meta"]
    assert meta["feature_names"] == WINE_FEATURES
    assert meta["records"] == [
        {"file": "winequality-red.csv", "start": 0, "count": 1599},
        {"file": "winequality-white.csv", "start": 1599, "count": 4898},
    ]
    assert [s["file"] for s in meta["sources"]] == ["winequality-red.csv", "winequality-white.csv"]
    x, y = by_row(wine)
    np.testing.assert_allclose(x[0], [7.4, 0.7, 0, 1.9, 0.076, 11, 34, 0.9978, 3.51, 0.56, 9.4])
    np.testing.assert_allclose(x[1599], [7, 0.27, 0.36, 20.7, 0.045, 45, 170, 1.001, 3, 0.45, 8.8])
    assert (y[0], y[1599]) == (5, 6)
    assert np.bincount(y[:1599].astype(int)).tolist() == [0, 0, 0, 10, 53, 681, 638, 199, 18]
    np.testing.assert_allclose(wine["x_mean"], wine["x_train"].double().mean(0), rtol=1e-6)
    assert wine["y_mean"] == pytest.approx(wine["y_train"].double().mean().item())


def test_wine_from_zip_matches_folder(wine, data_dir, tmp_path):
    archive = tmp_path / "wine+quality.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in ("winequality-red.csv", "winequality-white.csv", "winequality.names"):
            zf.write(data_dir / "wine-quality" / f, f"wine_quality/{f}")
    again = run(tmp_path, {**WINE, "path": str(archive)})
    for key in TENSORS:
        assert torch.equal(again[key], wine[key]), key


def test_wine_bad_inputs(tmp_path, data_dir):
    folder = tmp_path / "wine"
    folder.mkdir()
    red = (data_dir / "wine-quality" / "winequality-red.csv").read_bytes()
    (folder / "winequality-red.csv").write_bytes(red)
    cfg = {**WINE, "path": str(folder)}
    assert_fails(tmp_path, cfg, r"wine' holds no winequality-white\.csv")
    cfg = {**WINE, "path": str(folder / "winequality-red.csv")}
    assert_fails(tmp_path, cfg, r"is neither a zip nor a folder.*winequality-white\.csv")
    white = (data_dir / "wine-quality" / "winequality-white.csv").read_bytes()
    (folder / "winequality-white.csv").write_bytes(white.replace(b";", b","))
    sums = {"winequality-white.csv": sha(white.replace(b";", b","))}
    cfg = {**WINE, "path": str(folder), "sha256": sums}
    assert_fails(tmp_path, cfg, r"winequality-white\.csv: missing column.*comma-separated")
    (folder / "winequality-white.csv").write_bytes(white)
    cfg = {**WINE, "path": str(folder), "train_size": 4007}
    assert_fails(
        tmp_path, cfg, r"train_size: 4007 \+ test_size 2491 = 6498 exceeds the 6497 records"
    )
