"""Shared fixtures. Tests that need the real datasets use ``data_dir``: they run whenever
BIV_DATA_DIR is set (CI sets it) and are skipped only when it is not."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import threading
import zipfile
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from biv.config.figures import Figure, build_figure

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ("Snakefile", "rules", "scripts", "config", "report", "envs", "src")  # src: its code


def copy_workflow(dest: Path, names: Iterable[str] = WORKFLOW) -> Path:
    """The repository's workflow files (`names`, relative to the root) copied into `dest`."""
    for name in names:
        source, target = ROOT / name, dest / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest.resolve()


def checked_figure(figure: dict, loss_types: dict[str, dict[str, str]]) -> Figure:
    """``figure`` (as written in a config) checked as the plan checks it, against experiments
    given as experiment name -> {loss name: loss type}."""
    experiments = {
        name: SimpleNamespace(
            name=name, losses={loss: SimpleNamespace(type=t) for loss, t in types.items()}
        )
        for name, types in loss_types.items()
    }
    return build_figure("figure", figure, experiments)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    value = os.environ.get("BIV_DATA_DIR")
    if not value:
        pytest.skip("BIV_DATA_DIR is not set: real-data test not run")
    path = Path(value)
    if not path.is_dir():
        raise FileNotFoundError(f"BIV_DATA_DIR={value!r} is not a folder")
    return path


@pytest.fixture(scope="session", autouse=True)
def production_float32():
    """The tests compute as a training run does on CUDA: float32 without TF32 (PyTorch's
    default lets cuDNN convolutions use it) and deterministic cuDNN (``biv.train.loop``)."""
    from biv.train.devices import exact_float32

    exact_float32(torch.device("cuda"))  # sets flags only: harmless without a GPU
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False


@pytest.fixture
def one_torch_thread():
    """Tiny models: one intra-op thread avoids OpenMP stalls on a busy shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serving(root: Path):
    """An HTTP server of the folder ``root`` on this host's loopback (127.0.0.1, an ephemeral
    port), the tests' stand-in for a publisher: its base URL."""
    handler = functools.partial(_Quiet, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def server(tmp_path):
    """(folder served, base URL) of :func:`serving`."""
    root = tmp_path / "www"
    root.mkdir()
    with serving(root) as base:
        yield root, base


def make_zip(path: Path, files: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)


def bike_files(data_dir: Path) -> dict[str, bytes]:
    folder = data_dir / "bike-sharing"
    return {f: (folder / f).read_bytes() for f in ("Readme.txt", "day.csv", "hour.csv")}
