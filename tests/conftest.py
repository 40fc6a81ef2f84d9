"""Shared fixtures. Tests that need the real datasets use ``data_dir``: they run whenever
BIV_DATA_DIR is set (CI sets it) and are skipped only when it is not.

Helpers that tests call with arguments are factory fixtures (a fixture that returns the
function): no test module imports another, nor this one."""

from __future__ import annotations

import contextlib
import csv
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
from biv.config.noise import resolve
from biv.data.prepared import load_prepared, train_labels, write
from biv.noise.files import write_draw_file

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ("Snakefile", "rules", "scripts", "config", "report", "envs", "src")  # src: its code


def _copy_workflow(dest: Path, names: Iterable[str] = WORKFLOW) -> Path:
    """The repository's workflow files (`names`, relative to the root) copied into `dest`."""
    for name in names:
        source, target = ROOT / name, dest / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest.resolve()


def _checked_figure(figure: dict, loss_types: dict[str, dict[str, str]]) -> Figure:
    """``figure`` (as written in a config) checked as the plan checks it, against experiments
    given as experiment name -> {loss name: loss type}."""
    experiments = {
        name: SimpleNamespace(
            name=name, losses={loss: SimpleNamespace(type=t) for loss, t in types.items()}
        )
        for name, types in loss_types.items()
    }
    return build_figure("figure", figure, experiments)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """``@pytest.mark.cuda`` tests are skipped on a machine without a CUDA GPU."""
    if item.get_closest_marker("cuda") is not None and not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")


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
def _serving(root: Path):
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
    """(folder served, base URL) of :func:`_serving`."""
    root = tmp_path / "www"
    root.mkdir()
    with _serving(root) as base:
        yield root, base


def _make_zip(path: Path, files: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)


# ----------------------------------------------------------------------------- factories


@pytest.fixture(scope="session")
def copy_workflow():
    """``copy_workflow(dest, names=WORKFLOW)``: the repository's workflow files copied into
    ``dest`` (its resolved path)."""
    return _copy_workflow


@pytest.fixture(scope="session")
def workflow_files() -> tuple[str, ...]:
    """The names (relative to the root) that ``copy_workflow`` copies by default."""
    return WORKFLOW


@pytest.fixture(scope="session")
def checked_figure():
    """``checked_figure(figure, loss_types)``: a config's figure checked as the plan checks it."""
    return _checked_figure


@pytest.fixture(scope="session")
def serving():
    """``with serving(root) as base_url``: an HTTP server of the folder ``root``."""
    return _serving


@pytest.fixture(scope="session")
def make_zip():
    """``make_zip(path, {name: bytes})``: a zip file of those members."""
    return _make_zip


@pytest.fixture
def bike_files(data_dir) -> dict[str, bytes]:
    """The bike-sharing files of ``data_dir`` (name -> bytes), as the publisher's zip holds them."""
    folder = data_dir / "bike-sharing"
    return {f: (folder / f).read_bytes() for f in ("Readme.txt", "day.csv", "hour.csv")}


# ----------------------------------------------------------------------------- toy training runs


class _Toy:
    """Tiny prepared-data files in the layout of biv.data.prepared, noise settings in the layout
    of estimate_noise's params.json (the runs draw their noisy labels from them), and the run
    parameters of a small MLP trained on them."""

    Y_MEAN, Y_STD = 50.0, 5.0
    #: sigma^2 ~ U(0.5, 40) in raw label units
    RAMP = {"mode": "boundaries", "components": [{"a": 0.5, "b": 40.0}]}

    def write_prepared(
        self, path: Path, n_train: int = 60, n_test: int = 25, images: int = 0
    ) -> dict:
        """A prepared file (biv.data.prepared layout) with labels of mean ~50 and std ~5."""
        gen = torch.Generator().manual_seed(0)
        n = n_train + n_test
        if images:
            x = torch.randint(0, 256, (n, 3, images, images), generator=gen, dtype=torch.uint8)
            signal = x.float().mean(dim=(1, 2, 3)) / 64
            x_mean, x_std = torch.tensor([0.5, 0.4, 0.3]), torch.tensor([0.25, 0.2, 0.3])
        else:
            x = torch.randn(n, 4, generator=gen) * 3 + 1
            signal = x @ torch.tensor([0.5, -0.3, 0.2, 0.1])
            x_mean, x_std = x[:n_train].mean(0), x[:n_train].std(0)
        y = self.Y_MEAN + self.Y_STD * (signal - signal.mean()) / signal.std()
        prepared = {
            "x_train": x[:n_train].clone(),
            "y_train": y[:n_train].clone(),
            "x_test": x[n_train:].clone(),
            "y_test": y[n_train:].clone(),
            "x_mean": x_mean,
            "x_std": x_std,
            "y_mean": self.Y_MEAN,
            "y_std": self.Y_STD,
            "meta": {"dataset": "toy", "kind": "synthetic", "n_train": n_train, "n_test": n_test},
        }
        write(path, prepared)
        return prepared

    def write_noise_draws(self, path: Path, data: Path, setting: dict = RAMP) -> None:
        """The noise-draw file (draw_noise's) of seeds 0-20 for the training labels of ``data``."""
        write_draw_file(path, train_labels(data), resolve(setting).to_dict(), range(21))

    def add_own_noise(self, data: Path, var: torch.Tensor) -> None:
        """Give the prepared file ``data`` its own noisy labels with raw-unit variances ``var``
        (a table's layout: the runs train on them without a noise setting)."""
        prepared = load_prepared(data)
        gen = torch.Generator().manual_seed(1)
        noise = var.sqrt() * torch.randn(len(var), generator=gen)
        prepared |= {"y_noisy_train": prepared["y_train"] + noise, "var_train": var}
        write(data, prepared)

    def files(self, folder: Path) -> tuple[Path, Path]:
        """(data.npz, noise.npz) in ``folder``, written unless there already."""
        data, noise = folder / "data.npz", folder / "noise.npz"
        if not data.exists():
            self.write_prepared(data)
            self.write_noise_draws(noise, data)
        return data, noise

    def params(self, folder: Path, **training) -> dict:
        """A run's parameters (biv, seed 3) on the files of :meth:`files` in ``folder``."""
        data, noise = self.files(folder)
        return {
            "experiment": "toy",
            "loss_name": "biv",
            "seed": 3,
            "dataset": {"name": "toy", "file": str(data)},
            "noise": {"name": "ramp", "file": str(noise)},
            "loss": {"type": "biv", "epsilon": 0.5},
            "model": {"name": "mlp", "hidden": [16, 8], "batchnorm": False},
            "training": {
                "lr": 0.01,
                "batch_size": 16,
                "epochs": 3,
                "eval_every": 5,
                "checkpoint_every": 0,
                **training,
            },
        }

    @staticmethod
    def read_csv(path: Path) -> list[dict]:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))


@pytest.fixture(scope="session")
def toy() -> _Toy:
    """See :class:`_Toy`: ``toy.params(tmp_path, **training)``, ``toy.read_csv(path)``, ..."""
    return _Toy()


# ----------------------------------------------------------------------------- biv legacy


class _Legacy:
    """Command lines of the original code's families (``biv legacy``)."""

    # The example commands of the issue, verbatim (shell quoting included).
    SEED_EXAMPLE = (
        '--exp_settings="classical_1_7159,7159,True,mse,5000" '
        '--noise_settings="True,uniform,True,False,0.5,1,False,3" '
        '--noise_params="0,0,0,0" --estim_noise_params="0.52,500,0.09,0"'
    )
    UTKF_EXAMPLE = (
        '--experiment_settings="exp_tag,7159,utkf,True,16000" '
        '--model_settings="vanilla_cnn,cutoffMSE" --noise_settings="True,binary_uniform" '
        '--params_settings="meanvar_avg,0.5,3000" --parameters="True,0.5,1,0.3,0"'
    )
    BIKE_EXAMPLE = (
        '--experiment_settings="exp_tag,7159,bike,True,14000" '
        '--model_settings="vanilla_ann,biv,0.5" --noise_settings="True,gamma" '
        '--params_settings="alphabeta" --parameters="1,0.00005" --extra_exp="256,0,True,0.001"'
    )
    VALUES = {  # (noise type, params type) -> --parameters values without var_scale
        ("uniform", "boundaries"): "0,10",
        ("uniform", "alphabeta"): "0,10",
        ("uniform", "meanvar"): "0.5,0.083",
        ("uniform", "meanvar_avg"): "0.5,1,0.083,0",
        ("binary_uniform", "boundaries"): "0,1000,1,3000",
        ("binary_uniform", "alphabeta"): "0,1000,1,3000",
        ("binary_uniform", "meanvar"): "0.5,1000,0.083,0",
        ("binary_uniform", "meanvar_avg"): "0.5,1,0.083,0",
        ("gamma", "boundaries"): "1,0.00005",
        ("gamma", "alphabeta"): "1,0.00005",
        ("gamma", "meanvar"): "20000,400000000",
        ("gamma", "meanvar_avg"): "1000,1,1000000,400000000",
    }
    SCALED = {  # with var_scale=True the v (or v1) slot is the scale
        ("uniform", "meanvar"): "0.5,0.3",
        ("uniform", "meanvar_avg"): "0.5,1,0.3,0",
        ("binary_uniform", "meanvar"): "0.5,1000,0.3,0",
        ("binary_uniform", "meanvar_avg"): "0.5,1,0.3,0",
        ("gamma", "meanvar"): "20000,400000000",
        ("gamma", "meanvar_avg"): "1000,1,1000000,400000000",
    }

    def final_noise_argv(self, family: str, mode: str, var_scale: str | None) -> list[str]:
        """The final family's arguments of a noise combination (bike, BIV), without the sizes."""
        settings = mode
        if family == "binary_uniform" or mode == "meanvar_avg":
            settings += ",0.5"
        if mode == "meanvar_avg":
            settings += ",3000"
        values = (self.SCALED if var_scale == "True" else self.VALUES)[(family, mode)]
        prefix = "" if var_scale is None else f"{var_scale},"
        return [
            "--experiment_settings=t,5,bike,True,7000",
            "--model_settings=vanilla_ann,biv,0.5",
            f"--noise_settings=True,{family}",
            f"--params_settings={settings}",
            f"--parameters={prefix}{values}",
        ]


@pytest.fixture(scope="session")
def legacy() -> _Legacy:
    """See :class:`_Legacy`: ``legacy.BIKE_EXAMPLE``, ``legacy.final_noise_argv(...)``."""
    return _Legacy()
