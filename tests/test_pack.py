"""Packs (biv.train.loop.train_pack): on the CPU each member's files are the bytes of its solo run,
whatever its pack size and packmates (float32 and float64), and float64 members agree with an
independent plain PyTorch loop to ~1e-12; the same pack gives the same bytes; a killed pack
resumes to the bytes of an uninterrupted one; a member's failure names it; run.json records the
pack."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import biv.train.loop
from biv.config import RunSpec
from biv.data.prepared import train_labels
from biv.noise.files import write_draw_file
from biv.train.loop import train_pack
from biv.train.models import build_model
from biv.train.run_data import load_run_data

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FILES = ("metrics.csv", "predictions.csv", "params.json")  # summary.json: + wall times
#: (loss name, loss, seed): a member of every loss type, cutoff with skipped steps, and two
#: members of one loss and different seeds (own noise draws, weights and batch orders)
MEMBERS = [
    ("biv", {"type": "biv", "epsilon": 0.5}, 1),
    ("cutoff", {"type": "cutoff", "threshold": 2.0}, 2),
    ("l2", {"type": "mse"}, 3),
    ("iv", {"type": "iv", "epsilon": 0.5}, 4),
    ("adaptive", {"type": "biv_adaptive", "ratio": 0.5}, 5),
    ("biv", {"type": "biv", "epsilon": 0.5}, 6),
]


def runs(toy, tmp_path: Path, batchnorm: bool = False, **training) -> list[dict]:
    """The members' parameters: toy data with 60 training samples, each seed its noise draw
    (variances from U(0.5, 40) in raw units: cutoff 2 keeps 4 % of them, and skips about half
    of the batches of 16)."""
    data, noise = toy.files(tmp_path)
    out = []
    for name, loss, seed in MEMBERS:
        out.append(
            {
                "experiment": "toy",
                "loss_name": name,
                "seed": seed,
                "dataset": {"name": "toy", "file": str(data)},
                "noise": {"name": "ramp", "file": str(noise)},
                "loss": loss,
                "model": {"name": "mlp", "hidden": [16, 8], "batchnorm": batchnorm},
                "training": {
                    "lr": 0.01,
                    "batch_size": 16,
                    "epochs": 8,
                    "eval_every": 3,
                    "checkpoint_every": 0,
                    **training,
                },
            }
        )
    return out


def folder(out: Path, params: dict) -> Path:
    return out / f"{params['loss_name']}-{params['seed']}"


def train_all(members: list[dict], out: Path, dtype=torch.float32) -> list[Path]:
    folders = [folder(out, p) for p in members]
    train_pack(members, folders, out, dtype=dtype)
    return folders


def numbers(toy, path: Path) -> dict[str, np.ndarray]:
    """A run's per-step training values and test metrics, and its predictions."""
    rows = toy.read_csv(path / "metrics.csv")
    values = {}
    for metric in {r["metric"] for r in rows}:
        values[metric] = np.array([float(r["value"]) for r in rows if r["metric"] == metric])
    values["y_pred"] = np.array(
        [float(r["y_pred"]) for r in toy.read_csv(path / "predictions.csv")]
    )
    return values


def assert_same_bytes(a: Path, b: Path, names=("metrics.csv", "predictions.csv")) -> None:
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), (a, b, name)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("batchnorm", [False, True])
@pytest.mark.parametrize("shuffle", [True, False])
def test_a_member_trains_as_its_solo_run_to_the_bit(toy, tmp_path, shuffle, batchnorm, dtype):
    """A member runs the arithmetic of its solo run: per member the same matrix products, loss,
    sums and Adam update (``biv.train.pack_model``, ``biv.train.optim``), so on the CPU its numbers
    are the solo run's, not merely close (BatchNorm included: see ``_MemberBias``)."""
    members = runs(toy, tmp_path, batchnorm, shuffle=shuffle)
    packed = train_all(members, tmp_path / "pack", dtype)
    # the same members in other packs (other sizes, packmates and order), and each alone
    for i in (0, 1):
        train_all(members[i::2][::-1], tmp_path / f"half{i}", dtype)
    for i, (params, in_pack) in enumerate(zip(members, packed, strict=True)):
        assert_same_bytes(in_pack, folder(tmp_path / f"half{i % 2}", params))
        assert_same_bytes(in_pack, train_all([params], tmp_path / "solo", dtype)[0])
    skipped = json.loads((packed[1] / "summary.json").read_text())["skipped_steps"]
    assert skipped > 0  # the cutoff member sat steps out while its packmates trained


def reference_losses(params: dict) -> tuple[list[float | None], torch.Tensor]:
    """One member trained by a plain loop in float64: torch.nn modules, torch.optim.Adam, its
    own permutation generator; skipped (None) where a cutoff batch keeps no sample."""
    run = RunSpec.from_dict(params)
    data = load_run_data([run], torch.device("cpu"), torch.float64)
    x, y, var = data.x_train, data.y_train[0], data.var_train[0]
    tr, loss = run.training, run.loss.in_model_units(data.y_std)
    torch.manual_seed(run.seed)
    model = build_model(run.model, (x.shape[1],)).double()
    optimizer = torch.optim.Adam(model.parameters(), lr=tr.lr)
    generator = torch.Generator().manual_seed(run.seed)
    losses = []
    for _ in range(tr.epochs):
        perm = torch.randperm(len(y), generator=generator)
        for lo in range(0, len(y), tr.batch_size):
            rows = perm[lo : lo + tr.batch_size]
            result = loss.kind.compute(model(x[rows]).squeeze(1), y[rows], var[rows], loss.params)
            if result.value is None:
                losses.append(None)
                continue
            optimizer.zero_grad()
            result.value.backward()
            optimizer.step()
            losses.append(float(result.value.detach()))
    model.eval()
    with torch.no_grad():
        return losses, model(data.x_test).squeeze(1) * data.y_std + data.y_mean


def test_float64_members_equal_an_independent_plain_loop(toy, tmp_path):
    members = [p for p in runs(toy, tmp_path) if p["loss"]["type"] != "biv_adaptive"]
    packed = train_all(members, tmp_path / "pack", torch.float64)
    for params, path in zip(members, packed, strict=True):
        expected, pred = reference_losses(params)
        rows = [r for r in toy.read_csv(path / "metrics.csv") if r["split"] == "train"]
        got = [None if r["metric"] == "skipped" else float(r["value"]) for r in rows]
        assert [g is None for g in got] == [e is None for e in expected]
        np.testing.assert_allclose(  # metrics.csv writes training losses to 9 digits
            [g for g in got if g is not None], [e for e in expected if e is not None], rtol=1e-8
        )
        np.testing.assert_allclose(numbers(toy, path)["y_pred"], pred.numpy(), rtol=1e-12)


def test_the_same_pack_gives_the_same_bytes(toy, tmp_path):
    members = runs(toy, tmp_path, batchnorm=True)
    first, second = train_all(members, tmp_path / "a"), train_all(members, tmp_path / "b")
    for a, b in zip(first, second, strict=True):
        assert_same_bytes(a, b, FILES)


class Crash(Exception):
    pass


def test_a_killed_pack_resumes_to_the_same_bytes(toy, tmp_path, monkeypatch):
    members = runs(toy, tmp_path, batchnorm=True, checkpoint_every=7)
    reference = train_all(members, tmp_path / "reference")
    real_save = biv.train.loop.save_checkpoint

    def save_then_crash(*args):
        real_save(*args)
        raise Crash

    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(biv.train.loop, "save_checkpoint", save_then_crash)
        with pytest.raises(Crash):
            train_all(members, out)
    assert (out / "checkpoint.pt").is_file()
    assert not any((folder(out, p) / "summary.json").exists() for p in members)
    resumed = train_all(members, out)
    assert not (out / "checkpoint.pt").exists()
    for a, b in zip(reference, resumed, strict=True):
        assert_same_bytes(a, b)
        assert json.loads((b / "run.json").read_text())["run"]["resumed_from_step"] == 7


def test_run_json_names_the_pack(toy, tmp_path):
    members = runs(toy, tmp_path)[:2]
    paths = train_all(members, tmp_path / "pack")
    for m, path in enumerate(paths):
        pack = json.loads((path / "run.json").read_text())["run"]["pack"]
        assert pack == {
            "members": ["toy/biv/seed1", "toy/cutoff/seed2"],
            "dtype": "float32",
            "member": m,
        }
        assert json.loads((path / "summary.json").read_text())["pack_size"] == 2


def test_a_non_finite_member_fails_the_pack_with_its_name(toy, tmp_path):
    members = runs(toy, tmp_path)[:3]
    for p in members:
        p["training"]["lr"] = 1e30
    with pytest.raises(biv.train.loop.NonFiniteLossError, match=r"^toy/\w+/seed\d: training loss"):
        train_all(members, tmp_path / "pack")


def test_members_must_share_data_model_and_training(toy, tmp_path):
    members = runs(toy, tmp_path)[:2]
    other = copy.deepcopy(members[1])
    other["training"]["lr"] = 0.5
    with pytest.raises(
        ValueError,
        match="toy/cutoff/seed2 cannot train in a pack with toy/biv/seed1: their training differs",
    ):
        train_all([members[0], other], tmp_path / "pack")
    with pytest.raises(ValueError, match="must be distinct"):
        train_all([members[0], members[0]], tmp_path / "pack")


def test_an_image_model_pack_trains_each_member_as_its_solo_run(toy, tmp_path):
    """The age CNN as a ModulePack: modules run one after another on their own batches, their
    parameters views of the stacked tensors PackAdam updates."""
    data = tmp_path / "images.npz"
    toy.write_prepared(data, n_train=24, n_test=8, images=64)
    members = []
    for loss, seed in (({"type": "biv", "epsilon": 0.5}, 1), ({"type": "mse"}, 2)):
        params = runs(toy, tmp_path)[0]
        params.update(
            loss_name=loss["type"],
            seed=seed,
            loss=loss,
            noise=None,
            dataset={"name": "toy", "file": str(data)},
            model={"name": "cnn"},
        )
        params["training"].update(batch_size=8, epochs=2, eval_every=2, eval_batch_size=8)
        members.append(params)
    packed = train_all(members, tmp_path / "pack")
    for params, in_pack in zip(members, packed, strict=True):
        assert_same_bytes(in_pack, train_all([params], tmp_path / "solo")[0])


def _sized_members(data: Path, noise: Path, hidden: list[int], losses: dict, **training) -> list:
    """Members of every loss in ``losses`` and seeds 1 and 2 (noise drawn from ``noise``)."""
    return [
        {
            "experiment": "sized",
            "loss_name": name,
            "seed": seed,
            "dataset": {"name": "sized", "file": str(data)},
            "noise": {"name": "sized", "file": str(noise)},
            "loss": loss,
            "model": {"name": "mlp", "hidden": hidden, "batchnorm": False},
            "training": {"lr": 0.001, "batch_size": 256, "checkpoint_every": 0, **training},
        }
        for seed in (1, 2)
        for name, loss in losses.items()
    ]


def _demo_members(folder: Path) -> list[dict]:
    """The demo's data, noise, model and losses (config/config.yaml), 2 epochs."""
    from biv.config.noise import resolve
    from biv.data import prepare

    data, noise = folder / "demo.npz", folder / "mixture.npz"
    prepare("synthetic", {"kind": "synthetic", "n_train": 2000, "n_test": 1000, "seed": 0}, data)
    mixture = [{"distribution": "gamma", "mean": 2.0, "var": 4.0}, {"mean": 6.0, "var_scale": 1.0}]
    setting = {"mode": "meanvar", "distribution": "uniform", "p": 0.5, "components": mixture}
    write_draw_file(noise, train_labels(data), resolve(setting).to_dict(), [1, 2])
    losses = {
        "l2": {"type": "mse"},
        "biv": {"type": "biv", "epsilon": 0.5},
        "cutoff": {"type": "cutoff", "threshold": 2.0},
    }
    return _sized_members(data, noise, [64, 64], losses, epochs=2, eval_every=1, shuffle=True)


def _bike_members(folder: Path, data_dir: Path) -> list[dict]:
    """Bike as bench/bench_pack.py trains it (14,000 rows, the paper's MLP and training block,
    the original's test protocol), 2 epochs."""
    from biv.config.noise import resolve
    from biv.data import prepare

    data, noise = folder / "bike.npz", folder / "gamma.npz"
    cfg = {"kind": "bike", "path": str(data_dir / "bike-sharing"), "train_size": 14000}
    prepare("bike", {**cfg, "test_size": 3379}, data)
    gamma = {"mode": "meanvar", "distribution": "gamma", "components": [{"mean": 2e4, "var": 4e8}]}
    write_draw_file(noise, train_labels(data), resolve(gamma).to_dict(), [1, 2])
    losses = {
        "l2": {"type": "mse"},
        "iv": {"type": "iv", "epsilon": 0.1},
        "biv": {"type": "biv", "epsilon": 0.1},
        "cutoff": {"type": "cutoff", "threshold": 20000},
    }
    training = {"epochs": 2, "eval_every": 1, "shuffle": False, "eval_protocol": "original"}
    return _sized_members(data, noise, [100, 50, 20, 10], losses, eval_batch_size=256, **training)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_member_is_its_solo_run_at_the_demos_size(tmp_path, threads):
    """At the demo's sizes (2,000 rows, batches of 256, a 64-64 MLP), on one and on two threads,
    where torch's products of a pack of one take other kernels than a batch of several
    (``biv.train.pack_model._batched``): each member's files are its solo run's bytes."""
    _check_members_are_solo_runs(_demo_members(tmp_path), tmp_path, threads)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_member_is_its_solo_run_at_bikes_size(tmp_path, data_dir, threads):
    """The same on real Bike data at the benchmark's sizes (14,000 rows, 3,379 test rows)."""
    _check_members_are_solo_runs(_bike_members(tmp_path, data_dir), tmp_path, threads)


def _check_members_are_solo_runs(members: list[dict], tmp_path: Path, threads: int) -> None:
    torch.set_num_threads(threads)  # the module's fixture restores the thread count
    packed = train_all(members, tmp_path / "pack")
    for params, in_pack in zip(members, packed, strict=True):
        assert_same_bytes(in_pack, train_all([params], tmp_path / "solo")[0])
