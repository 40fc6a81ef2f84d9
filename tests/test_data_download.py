"""Downloads for real, from a loopback HTTP server serving zips built from $BIV_DATA_DIR."""

from __future__ import annotations

import functools
import http.server
import socket
import threading
import zipfile
from pathlib import Path

import pytest
import torch

from biv.data import load_prepared, prepare

BIKE = {"kind": "bike", "train_size": 700, "test_size": 300}
WINE = {"kind": "wine", "train_size": 400, "test_size": 200}


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """(folder served, base URL) of an HTTP server on 127.0.0.1 at an ephemeral port."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_Quiet, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def make_zip(path: Path, files: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)


def bike_files(data_dir: Path) -> dict[str, bytes]:
    folder = data_dir / "bike-sharing"
    return {f: (folder / f).read_bytes() for f in ("Readme.txt", "day.csv", "hour.csv")}


def test_bike_download_caches_and_matches_local(data_dir, server, tmp_path):
    root, base = server
    make_zip(root / "bike+sharing+dataset.zip", bike_files(data_dir))
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


def test_wine_download(data_dir, server, tmp_path):
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


def test_download_checksum_mismatch_leaves_nothing(data_dir, server, tmp_path):
    root, base = server
    files = bike_files(data_dir)
    files["hour.csv"] = files["hour.csv"].replace(b",0.24,", b",0.25,", 1)
    make_zip(root / "bike.zip", files)
    expect_failure(tmp_path, f"{base}/bike.zip", r"bike\.zip!hour\.csv: checksum mismatch")


def test_download_not_a_zip_or_missing_member(data_dir, server, tmp_path):
    root, base = server
    (root / "page.zip").write_text("<html>not found</html>")
    expect_failure(tmp_path, f"{base}/page.zip", r"did not return a zip.*datasets\.bike\.path")
    make_zip(root / "day.zip", {"day.csv": bike_files(data_dir)["day.csv"]})
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
