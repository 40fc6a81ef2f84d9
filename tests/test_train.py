"""biv.train.loop: run-parameter validation, outputs, units, evaluation, determinism, errors.

Fixtures are tiny prepared-data files in the layout of biv.data.prepared, and noise settings in
the layout of estimate_noise's params.json (the runs draw their noisy labels from them).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math

import pytest
import torch

import biv.train.evaluation
import biv.train.loop
import biv.train.models
from biv.cli import train_from_file
from biv.config import RunSpec
from biv.config.noise import resolve
from biv.data.prepared import load_prepared
from biv.losses import LossResult, registered
from biv.noise.draws import draw
from biv.train.loop import train
from biv.workflow.run_folders import RUN_FILES

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ----------------------------------------------------------------------------- validation


def test_defaults_are_filled(toy, tmp_path):
    resolved = RunSpec.from_dict(toy.params(tmp_path)).to_dict()
    assert resolved["training"] == {
        "lr": 0.01,
        "batch_size": 16,
        "epochs": 3,
        "eval_every": 5,
        "shuffle": True,
        "normalize": True,
        "device": "auto",
        "checkpoint_every": 0,
        "eval_batch_size": 1024,
        "eval_protocol": "standard",
        "drop_last": False,
        "eval_bf16": False,
        "cuda_graphs": False,
        "pack_size": 5,
    }


def _set(params: dict, key: str, value) -> dict:
    params = copy.deepcopy(params)
    *path, last = key.split(".")
    target = params
    for part in path:
        target = target[part]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return params


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("colour", "red", r"^colour: unknown key"),
        ("seed", KeyError, r"^seed: missing"),
        ("seed", -1, "seed: -1"),
        ("seed", 1.5, "seed: 1.5"),
        ("experiment", "", "experiment: ''"),
        ("loss_name", 3, "loss_name: 3"),
        ("dataset.path", "x", r"^dataset\.path: unknown key"),
        ("noise.file", KeyError, r"^noise\.file: missing"),
        ("loss", {"type": "huber"}, "loss.type: .*huber"),
        ("loss", {"type": "cutoff"}, "loss.threshold: missing"),
        ("loss", {"type": "biv", "epsilon": -1}, "loss.epsilon: -1"),
        ("loss", "biv", "loss: 'biv'"),
        ("model.name", "vgg", "model.name: 'vgg'"),
        ("model.hidden", [4, -4], r"model.hidden\[1\]: -4"),
        ("training.lr", None, "training.lr: None"),
        ("training.lr", "0.01", "training.lr: '0.01'"),
        ("training.lr", 0, "training.lr: 0"),
        ("training.lr", math.inf, "training.lr: inf"),
        ("training.batch_size", 0, "training.batch_size: 0"),
        ("training.batch_size", True, "training.batch_size: True"),
        ("training.epochs", 2.0, "training.epochs: 2.0"),
        ("training.eval_every", 0, "training.eval_every: 0"),
        ("training.checkpoint_every", -5, "training.checkpoint_every: -5"),
        ("training.eval_batch_size", None, "training.eval_batch_size: None"),
        ("training.eval_protocol", "eval", "training.eval_protocol: 'eval' is not allowed"),
        ("training.shuffle", "no", "training.shuffle: 'no'"),
        ("training.normalize", 1, "training.normalize: 1"),
        ("training.device", "tpu", "training.device: 'tpu'"),
        ("training.momentum", 0.9, r"^training\.momentum: unknown key"),
        ("training.epochs", 10**12, "training.epochs: 1000000000000 is not allowed"),
    ],
)
def test_bad_parameters_raise_before_anything_is_written(toy, tmp_path, key, value, match):
    params = _set(toy.params(tmp_path), key, value)
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=match):
        train(params, out)
    assert not out.exists()


def test_missing_and_mismatched_files_are_named(toy, tmp_path):
    params = toy.params(tmp_path)
    out = tmp_path / "run"
    with pytest.raises(FileNotFoundError, match="dataset.file: .*nope.pt"):
        train(_set(params, "dataset.file", str(tmp_path / "nope.pt")), out)
    with pytest.raises(FileNotFoundError, match="noise.file: .*nope.pt"):
        train(_set(params, "noise.file", str(tmp_path / "nope.pt")), out)
    torch.save({"y_train": torch.zeros(3)}, tmp_path / "old.pt")  # not a prepared archive
    with pytest.raises(ValueError, match="dataset.file: .*old.pt.*not an archive of biv.data"):
        train(_set(params, "dataset.file", str(tmp_path / "old.pt")), out)
    (tmp_path / "bad.json").write_text(json.dumps({"label_units": {"mode": "boundaries"}}))
    with pytest.raises(ValueError, match="noise.file: .*bad.json.*noise-draw file.*not a .npz"):
        train(_set(params, "noise.file", str(tmp_path / "bad.json")), out)
    with pytest.raises(ValueError, match=r"noise.file: .*a noise-draw file .*no draw of seed 30"):
        train(_set(_set(params, "seed", 30), "noise.file", params["noise"]["file"]), out)
    with pytest.raises(ValueError, match="model.name: 'cnn' needs RGB images"):
        train(_set(params, "model", {"name": "cnn"}), out)
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_cuda_without_a_gpu_is_an_error(toy, tmp_path):
    with pytest.raises(ValueError, match="training.device: 'cuda'"):
        train(toy.params(tmp_path, device="cuda"), tmp_path / "run")


def test_batchnorm_batch_of_one_is_refused(toy, tmp_path):
    """A hand-written params.json gets the plan's message (one check: TrainingSpec's)."""
    params = toy.params(tmp_path, batch_size=59)  # 60 samples: last batch would hold 1
    params["model"]["batchnorm"] = True
    with pytest.raises(ValueError) as err:
        train(params, tmp_path / "run")
    assert str(err.value) == (
        "training.batch_size: 59 leaves a last batch of 1 sample of the 60 training samples, "
        "which BatchNorm cannot train on; choose another batch size or drop_last: true"
    )
    train(_set(params, "training.drop_last", True), tmp_path / "run")


def test_original_eval_protocol_trains_bit_identically(toy, tmp_path, monkeypatch):
    """A BatchNorm MLP trains the same with and without the original's evaluation protocol:
    same per-step losses, same final parameters and running statistics; only the logged test
    values differ, and they are the mean of the per-batch MSEs of the (batch-statistics)
    predictions."""
    params = toy.params(tmp_path, eval_every=1, eval_batch_size=7)  # 25 test: 7, 7, 7, 4
    params["model"]["batchnorm"] = True
    finals = {}
    real_predict = biv.train.loop.predict

    def keep_final_state(model, *args, **kwargs):
        finals[kwargs["protocol"]] = {k: v.clone() for k, v in model.state_dict().items()}
        return real_predict(model, *args, **kwargs)

    monkeypatch.setattr(biv.train.loop, "predict", keep_final_state)
    rows = {}
    for protocol in ("standard", "original"):
        train(_set(params, "training.eval_protocol", protocol), tmp_path / protocol)
        rows[protocol] = toy.read_csv(tmp_path / protocol / "metrics.csv")
    split = {
        p: ([r for r in v if r["split"] == "train"], [r for r in v if r["split"] == "test"])
        for p, v in rows.items()
    }
    assert split["standard"][0] == split["original"][0]  # training losses, bit for bit
    standard, original = finals["standard"], finals["original"]
    assert standard.keys() == original.keys()
    assert all(torch.equal(standard[k], original[k]) for k in standard)
    tests = {p: [float(r["value"]) for r in split[p][1] if r["metric"] == "mse"] for p in split}
    assert len(tests["original"]) == 12
    assert all(a != b for a, b in zip(tests["standard"], tests["original"], strict=True))

    run = json.loads((tmp_path / "original/run.json").read_text())
    assert run["training"]["eval_protocol"] == "original"
    assert run["run"]["evaluation"].startswith("original: as the original code")
    final = {r["metric"]: float(r["value"]) for r in split["original"][1] if r["step"] == "12"}
    pred = toy.read_csv(tmp_path / "original/predictions.csv")
    err = torch.tensor([float(r["y_pred"]) - float(r["y_true"]) for r in pred], dtype=torch.float64)
    per_batch = [float(e.square().mean()) for e in err.split(7)]
    assert final["mse_raw"] == pytest.approx(sum(per_batch) / len(per_batch), rel=1e-5)


def test_original_eval_protocol_refuses_a_test_batch_of_one(toy, tmp_path):
    params = toy.params(tmp_path, eval_protocol="original", eval_batch_size=8)  # 25 = 3 x 8 + 1
    params["model"]["batchnorm"] = True
    with pytest.raises(ValueError) as err:
        train(params, tmp_path / "run")
    assert str(err.value) == (  # the plan's message (one check: TrainingSpec's)
        "training.eval_batch_size: 8 leaves a last test batch of 1 sample of the 25 test "
        "samples, which BatchNorm cannot normalise with eval_protocol: original; choose another "
        "eval_batch_size"
    )
    assert not (tmp_path / "run").exists()


def test_main_reports_bad_input_with_exit_code_2(toy, tmp_path, caplog):
    params_file = tmp_path / "params.json"
    params_file.write_text(json.dumps(_set(toy.params(tmp_path), "training.epochs", 0)))
    assert train_from_file(params_file, tmp_path / "run") == 2
    assert "training.epochs: 0" in caplog.text
    params_file.write_text("{not json")
    assert train_from_file(params_file, tmp_path / "run") == 2
    assert "invalid JSON" in caplog.text
    assert train_from_file(tmp_path / "absent.json", tmp_path / "run") == 2
    assert "absent.json" in caplog.text


# ----------------------------------------------------------------------------- outputs


def test_run_folder_outputs(toy, tmp_path):
    out = tmp_path / "run"
    summary = train(toy.params(tmp_path), out)
    assert sorted(p.name for p in out.iterdir()) == [
        "metrics.csv",
        "params.json",
        "predictions.csv",
        "run.json",
        "summary.json",
    ]
    # where the workflow's rules look for them
    assert sorted(RUN_FILES.values()) == sorted(p.name for p in out.iterdir())
    # what `biv train` reads, every default filled in: the folder reruns as it is
    params = json.loads((out / "params.json").read_text())
    assert params == RunSpec.from_dict(toy.params(tmp_path)).to_dict()
    # 60 samples, batch 16 -> 4 steps per epoch (last batch of 12 kept), 3 epochs
    rows = toy.read_csv(out / "metrics.csv")
    assert list(rows[0]) == ["step", "epoch", "split", "metric", "value"]
    train_rows = [r for r in rows if r["split"] == "train"]
    assert [int(r["step"]) for r in train_rows] == list(range(1, 13))
    assert [int(r["epoch"]) for r in train_rows] == [1] * 4 + [2] * 4 + [3] * 4
    assert all(r["metric"] == "loss" and math.isfinite(float(r["value"])) for r in train_rows)
    test_rows = [r for r in rows if r["split"] == "test"]
    assert sorted({int(r["step"]) for r in test_rows}) == [5, 10, 12]
    assert {r["metric"] for r in test_rows} == {"mse", "mae", "mse_raw", "mae_raw"}
    final = {r["metric"]: float(r["value"]) for r in test_rows if r["step"] == "12"}

    # raw = normalized * y_std (**2), and the predictions reproduce the final errors
    assert final["mse_raw"] == pytest.approx(final["mse"] * toy.Y_STD**2, rel=1e-12)
    assert final["mae_raw"] == pytest.approx(final["mae"] * toy.Y_STD, rel=1e-12)
    pred = toy.read_csv(out / "predictions.csv")
    assert [int(r["index"]) for r in pred] == list(range(25))
    prepared = load_prepared(tmp_path / "data.npz")
    y_true = torch.tensor([float(r["y_true"]) for r in pred], dtype=torch.float32)
    assert torch.equal(y_true, prepared["y_test"])  # 9 significant digits: exact float32
    err = torch.tensor([float(r["y_pred"]) - float(r["y_true"]) for r in pred], dtype=torch.float64)
    assert float(err.square().mean()) == pytest.approx(final["mse_raw"], rel=1e-5)
    assert float(err.abs().mean()) == pytest.approx(final["mae_raw"], rel=1e-5)

    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk == summary
    assert set(summary) == {
        "experiment",
        "loss_name",
        "seed",
        "test_labels",
        "best_test_mse",
        "best_step",
        "final_test_mse",
        "final_test_mse_raw",
        "final_test_mae_raw",
        "skipped_steps",
        "steps",
        "wall_time_s",
        "steps_per_s",
        "pack_size",
    }
    assert (summary["steps"], summary["skipped_steps"], summary["seed"]) == (12, 0, 3)
    mses = {int(r["step"]): float(r["value"]) for r in test_rows if r["metric"] == "mse"}
    assert summary["best_test_mse"] == min(mses.values())
    assert mses[summary["best_step"]] == summary["best_test_mse"]
    assert summary["final_test_mse"] == final["mse"]
    assert summary["final_test_mse_raw"] == final["mse_raw"]

    run = json.loads((out / "run.json").read_text())
    assert run["training"]["shuffle"] is True and run["seed"] == 3
    assert run["device"]["type"] == "cpu" and run["device"]["name"]
    assert run["provenance"]["git_commit"]
    assert run["run"]["steps_per_epoch"] == 4 and run["run"]["total_steps"] == 12
    assert "cudnn_deterministic" in run["run"]["determinism"]


def test_a_bf16_evaluation_is_checked_against_float32(toy, tmp_path, monkeypatch, caplog):
    """Where bfloat16 evaluation is used (CUDA images; here the CPU stands in, with predictions
    1 % off), each run records its final test MSE against float32's and warns beyond the
    stated bound; without bf16 the record says only that it was not used."""
    params = toy.params(tmp_path, eval_bf16=True)
    train(params, tmp_path / "fp32")
    plain = json.loads((tmp_path / "fp32/run.json").read_text())["run"]["eval_bf16"]
    assert plain == {"requested": True, "used": False}

    real_predict = biv.train.loop.predict

    def bf16_off_by(scale):
        def predict(model, data, chunks, bf16, protocol):
            pred = real_predict(model, data, chunks, False, protocol=protocol)
            return pred * scale if bf16 else pred

        return predict

    monkeypatch.setattr(biv.train.loop, "use_bf16", lambda bf16, x: bf16)
    for scale, within in ((1.0, True), (1.3, False)):
        monkeypatch.setattr(biv.train.loop, "predict", bf16_off_by(scale))
        out = tmp_path / f"bf16-{scale}"
        with caplog.at_level("WARNING", logger="biv.train.loop"):
            train(params, out)
        check = json.loads((out / "run.json").read_text())["run"]["eval_bf16"]
        assert check["used"] and check["within_bound"] is within
        assert check["bound"] == biv.train.evaluation.BF16_MSE_RTOL
        assert (check["final_test_mse_rel_diff_vs_float32"] == 0) is within
        warned = "toy/biv/seed3: the bfloat16 evaluation's final test MSE" in caplog.text
        assert warned is not within


def test_identical_inputs_give_identical_metrics_bytes(toy, tmp_path):
    params = toy.params(tmp_path, eval_every=1)
    train(params, tmp_path / "a")
    train(params, tmp_path / "b")
    for name in ("metrics.csv", "predictions.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    params["seed"] = 4
    train(params, tmp_path / "c")
    assert (tmp_path / "a/metrics.csv").read_bytes() != (tmp_path / "c/metrics.csv").read_bytes()


def test_shuffle_false_uses_sequential_batches_and_clean_labels_without_noise(toy, tmp_path):
    """With noise null and shuffle false, training equals a hand-written sequential loop."""
    params = toy.params(tmp_path, shuffle=False, eval_every=100, epochs=2)
    params["noise"] = None
    params["loss"] = {"type": "mse"}
    train(params, tmp_path / "run")
    prepared = load_prepared(tmp_path / "data.npz")
    x = (prepared["x_train"] - prepared["x_mean"]) / prepared["x_std"]
    y = ((prepared["y_train"].double() - toy.Y_MEAN) / toy.Y_STD).float()
    torch.manual_seed(3)
    model = biv.train.models.build_model(RunSpec.from_dict(params).model, (4,))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    expected = []
    for _ in range(2):
        for lo in range(0, 60, 16):
            loss = (model(x[lo : lo + 16]).squeeze(1) - y[lo : lo + 16]).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            expected.append(f"{loss.item():.9g}")
    rows = toy.read_csv(tmp_path / "run/metrics.csv")
    assert [r["value"] for r in rows if r["split"] == "train"] == expected


def test_cutoff_threshold_is_converted_from_raw_units(toy, tmp_path):
    """Raw variances 100 (first 16 samples) and 1; raw threshold 50 keeps only the variance-1
    samples, so with sequential batches the first step of each epoch is skipped."""
    params = toy.params(tmp_path, shuffle=False, eval_every=100)
    var = torch.ones(60)
    var[:16] = 100.0
    toy.add_own_noise(tmp_path / "data.npz", var)
    params["noise"] = None
    params["loss"] = {"type": "cutoff", "threshold": 50.0}
    for normalize in (True, False):
        params["training"]["normalize"] = normalize
        out = tmp_path / f"run{normalize}"
        summary = train(params, out)
        assert summary["skipped_steps"] == 3
        rows = toy.read_csv(out / "metrics.csv")
        skipped = [int(r["step"]) for r in rows if r["metric"] == "skipped"]
        assert skipped == [1, 5, 9]
        assert not [r for r in rows if r["metric"] == "loss" and int(r["step"]) in skipped]
        run = json.loads((out / "run.json").read_text())
        assert run["loss"]["threshold"] == 50.0
        expected = 50.0 / toy.Y_STD**2 if normalize else 50.0
        assert run["run"]["loss_in_model_units"]["threshold"] == pytest.approx(expected)


def test_loss_sees_normalized_variances_and_raw_epsilon(toy, tmp_path, monkeypatch):
    seen, kind = [], registered()["biv"]

    def spy(pred, target, var, params, var_host):
        seen.append((params, var.clone(), target.clone()))
        return kind.compute(pred, target, var, params, var_host)

    monkeypatch.setitem(registered(), "biv", dataclasses.replace(kind, compute=spy))
    params = toy.params(tmp_path, shuffle=False, epochs=1)
    train(params, tmp_path / "run")
    spec, var, target = seen[-1]
    assert spec == {"epsilon": 0.5}
    y_train = load_prepared(tmp_path / "data.npz")["y_train"]
    noise = draw(y_train.numpy(), resolve(toy.RAMP), seed=params["seed"])
    var_seen, y_noisy = (torch.from_numpy(a[48:]).float() for a in (noise.var_seen, noise.y_noisy))
    assert torch.allclose(var, var_seen / toy.Y_STD**2)
    assert torch.allclose(target, (y_noisy - toy.Y_MEAN) / toy.Y_STD)


def test_adaptive_epsilon_is_recorded(toy, tmp_path):
    params = toy.params(tmp_path)
    params["loss"] = {"type": "biv_adaptive", "ratio": 0.5}
    train(params, tmp_path / "run")
    rows = toy.read_csv(tmp_path / "run/metrics.csv")
    eps = [r for r in rows if r["metric"] == "epsilon"]
    assert [int(r["step"]) for r in eps] == list(range(1, 13))
    assert all(float(r["value"]) >= 0 for r in eps)


def test_cnn_on_uint8_images(toy, tmp_path):
    toy.write_prepared(tmp_path / "data.npz", n_train=6, n_test=3, images=64)
    params = toy.params(tmp_path, batch_size=3, epochs=1, eval_every=1, eval_batch_size=2)
    params["noise"] = None
    params["model"] = {"name": "cnn"}
    summary = train(params, tmp_path / "run")
    assert summary["steps"] == 2
    assert len(toy.read_csv(tmp_path / "run/predictions.csv")) == 3


def test_non_finite_loss_stops_with_step_and_value(toy, tmp_path, monkeypatch, caplog):
    kind, calls = registered()["biv"], []

    def exploding(*args):
        calls.append(1)
        result = kind.compute(*args)
        return LossResult(result.value * math.nan, None) if len(calls) == 7 else result

    monkeypatch.setitem(registered(), "biv", dataclasses.replace(kind, compute=exploding))
    params_file = tmp_path / "params.json"
    params_file.write_text(json.dumps(toy.params(tmp_path)))
    assert train_from_file(params_file, tmp_path / "run") == 1
    assert "training loss is nan at step 7" in caplog.text
    assert not (tmp_path / "run/summary.json").exists()


def test_real_bike_file_from_biv_data(toy, tmp_path, data_dir):
    """A prepared Bike file written by biv.data trains with the paper's Bike MLP."""
    from biv.data import prepare

    cfg = {"kind": "bike", "path": str(data_dir / "bike-sharing"), "train_size": 512}
    prepare("bike", {**cfg, "test_size": 300}, tmp_path / "bike.npz")
    params = toy.params(tmp_path, batch_size=256, epochs=1, eval_every=1, eval_batch_size=128)
    params["dataset"]["file"] = str(tmp_path / "bike.npz")
    params["noise"] = None
    params["model"] = {"name": "mlp", "hidden": [100, 50, 20, 10], "batchnorm": False}
    summary = train(params, tmp_path / "run")
    assert summary["steps"] == 2 and math.isfinite(summary["final_test_mse"])
    run = json.loads((tmp_path / "run/run.json").read_text())
    assert run["run"]["dataset_meta"]["dataset"] == "bike"
    assert len(toy.read_csv(tmp_path / "run/predictions.csv")) == 300
