"""Downloads for real, from a loopback HTTP server serving zips built from $BIV_DATA_DIR."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from biv.config.dataset import parse
from biv.data import load_prepared, prepare
from biv.data.sources import KNOWN_SHA256, archive_name, download

ROOT = Path(__file__).resolve().parents[1]

BIKE = {"kind": "bike", "train_size": 700, "test_size": 300}
WINE = {"kind": "wine", "train_size": 400, "test_size": 200}


def test_bike_download_caches_and_matches_local(data_dir, server, tmp_path, bike_files, make_zip):
    root, base = server
    make_zip(root / "bike+sharing+dataset.zip", bike_files)
    cache = tmp_path / "cache"
    url = f"{base}/bike+sharing+dataset.zip"
    prepare("bike", {**BIKE, "url": url}, tmp_path / "a.npz", cache)
    assert sorted(p.name for p in cache.iterdir()) == ["bike+sharing+dataset.zip"]
    local = {**BIKE, "path": str(data_dir / "bike-sharing")}
    prepare("bike", local, tmp_path / "b.npz")
    a, b = load_prepared(tmp_path / "a.npz"), load_prepared(tmp_path / "b.npz")
    for key in ("x_train", "y_train", "x_test", "y_test", "x_mean", "x_std"):
        assert torch.equal(a[key], b[key]), key
    assert a["meta"]["sources"][0]["origin"] == f"{url}!hour.csv"
    (root / "bike+sharing+dataset.zip").unlink()  # now only the cache can serve it
    prepare("bike", {**BIKE, "url": url}, tmp_path / "c.npz", cache)
    assert torch.equal(load_prepared(tmp_path / "c.npz")["x_train"], a["x_train"])


def test_wine_download(data_dir, server, tmp_path, make_zip):
    root, base = server
    folder = data_dir / "wine-quality"
    files = {f: (folder / f).read_bytes() for f in ("winequality-red.csv", "winequality-white.csv")}
    make_zip(root / "wine+quality.zip", files)
    prepare("wine", {**WINE, "url": f"{base}/wine+quality.zip"}, tmp_path / "w.npz", tmp_path / "c")
    assert load_prepared(tmp_path / "w.npz")["x_train"].shape == (400, 11)
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["wine+quality.zip"]


def expect_failure(tmp_path: Path, url: str, match: str) -> None:
    cache, out = tmp_path / "cache", tmp_path / "out" / "bike.npz"
    with pytest.raises(ValueError, match=match):
        prepare("bike", {**BIKE, "url": url}, out, cache)
    assert list(cache.iterdir()) == []  # no partial download or unverified zip left
    assert not out.parent.exists()


def test_download_checksum_mismatch_leaves_nothing(
    data_dir, server, tmp_path, bike_files, make_zip
):
    root, base = server
    files = bike_files
    files["hour.csv"] = files["hour.csv"].replace(b",0.24,", b",0.25,", 1)
    make_zip(root / "bike.zip", files)
    expect_failure(tmp_path, f"{base}/bike.zip", r"bike\.zip!hour\.csv: checksum mismatch")


def test_download_not_a_zip_or_missing_member(data_dir, server, tmp_path, bike_files, make_zip):
    root, base = server
    (root / "page.zip").write_text("<html>not found</html>")
    expect_failure(tmp_path, f"{base}/page.zip", r"did not return a zip.*datasets\.bike\.path")
    make_zip(root / "day.zip", {"day.csv": bike_files["day.csv"]})
    expect_failure(tmp_path, f"{base}/day.zip", r"has no member hour\.csv.*datasets\.bike\.path")


def test_download_http_error_and_offline(server, tmp_path):
    _, base = server
    expect_failure(
        tmp_path, f"{base}/missing.zip", r"could not download .*404.*datasets\.bike\.path"
    )
    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/bike.zip"
    expect_failure(tmp_path, url, r"could not download .*refused.*set datasets\.bike\.path to")


def test_download_needs_download_dir(tmp_path):
    with pytest.raises(ValueError, match=r"datasets\.bike\.url: .* download folder"):
        prepare("bike", {**BIKE, "url": "http://127.0.0.1:9/x.zip"}, tmp_path / "o.npz", None)


def test_without_network_only_the_cache_serves(data_dir, server, tmp_path, bike_files, make_zip):
    """A workflow job prepares without network: a zip that is not in the cache is an error
    that names the download job's record; one that is there (downloaded by the job) is used."""
    root, base = server
    make_zip(root / "bike+sharing+dataset.zip", bike_files)
    url, cache = f"{base}/bike+sharing+dataset.zip", tmp_path / "cache"
    cfg = {**BIKE, "url": url}
    with pytest.raises(ValueError, match=r"bike\+sharing\+dataset\.zip is not there, and this job"):
        prepare("bike", cfg, tmp_path / "a.npz", cache, network=False)
    assert not (tmp_path / "a.npz").exists()
    record = download({"bike": parse("bike", cfg)}, cache)
    assert record == {
        "url": url,
        "archive": str(cache / "bike+sharing+dataset.zip"),
        "sha256": {"bike": {"hour.csv": KNOWN_SHA256["hour.csv"]}},
    }
    (root / "bike+sharing+dataset.zip").unlink()  # the network has nothing any more
    prepare("bike", cfg, tmp_path / "a.npz", cache, network=False)
    assert load_prepared(tmp_path / "a.npz")["x_train"].shape == (700, 19)


def test_one_download_checks_every_dataset_of_its_zip(
    data_dir, server, tmp_path, bike_files, make_zip
):
    root, base = server
    make_zip(root / "bike.zip", bike_files)
    url = f"{base}/bike.zip"
    small = parse("small", {**BIKE, "url": url, "train_size": 100})
    wrong = parse("wrong", {**BIKE, "url": url, "sha256": {"hour.csv": "0" * 64}})
    assert set(
        download({"bike": parse("bike", {**BIKE, "url": url}), "small": small}, tmp_path)["sha256"]
    ) == {"bike", "small"}
    with pytest.raises(ValueError, match=r"checksum mismatch.*datasets\.wrong\.sha256\.hour\.csv"):
        download({"small": small, "wrong": wrong}, tmp_path)


def test_archive_names_are_a_function_of_the_url():
    assert archive_name("https://x.org/a/bike+sharing+dataset.zip") == "bike+sharing+dataset.zip"
    named = archive_name("https://x.org/get?id=275")
    assert named.startswith("get-") and named.endswith(".zip")
    assert named != archive_name("https://x.org/get?id=276")  # two sources, two files


def planned(workdir: Path, *args: str) -> dict[str, int]:
    """The jobs ``snakemake -n *args`` plans, by rule."""
    cmd = [sys.executable, "-m", "snakemake", "-n", "--configfile", "bike.yaml", *args]
    out = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, check=True).stdout
    return {m[1]: int(m[2]) for m in re.finditer(r"(?m)^(\w+)\s+(\d+)$", out) if m[1] != "total"}


@pytest.mark.slow
@pytest.mark.workflow
def test_the_workflow_downloads_in_a_job_of_its_own(
    data_dir, server, tmp_path, bike_files, copy_workflow, make_zip
):
    """The download job fetches the zip and records its checks; preparing reads the cache.
    Moving the cache downloads again (from the new cache, here) and reruns nothing else."""
    root, base = server
    make_zip(root / "bike.zip", bike_files)
    workdir = copy_workflow(tmp_path / "work")
    config = yaml.safe_load((ROOT / "tests/configs/tiny.yaml").read_text())
    config.pop("reproduction")
    config["datasets"]["bike"] = {**BIKE, "url": f"{base}/bike.zip"}
    config["experiments"]["clean"]["dataset"] = "bike"
    config["download_dir"] = "cache1"
    (workdir / "bike.yaml").write_text(yaml.safe_dump(config))
    until = ["--until", "prepare_dataset"]
    assert planned(workdir, *until) == {"download": 1, "prepare_dataset": 2}
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "bike.yaml"]
    subprocess.run([*cmd, *until], cwd=workdir, check=True, capture_output=True)
    record = json.loads((workdir / "results/downloads/bike.zip.json").read_text())
    assert record["archive"] == "cache1/bike.zip" and (workdir / "results/data/bike.npz").exists()
    assert planned(workdir, *until) == {}
    (root / "bike.zip").unlink()
    (workdir / "cache2").mkdir()
    shutil.copy(workdir / "cache1/bike.zip", workdir / "cache2/bike.zip")
    moved = [*until, "--config", "download_dir=cache2"]
    assert planned(workdir, *moved) == {"download": 1}
    subprocess.run([*cmd, *moved], cwd=workdir, check=True, capture_output=True)
    assert planned(workdir, *moved) == {}
