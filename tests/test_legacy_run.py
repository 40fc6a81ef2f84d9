"""biv legacy end to end on the real datasets, small: prepare -> noise -> train -> run folder.

Every example command of the issue runs, plus a representative subset of the noise combinations.
Prepared data is shared through one cache folder per module (the same sizes everywhere).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from biv.config.model import ModelSpec
from biv.config.noise import NoiseSpec, resolve
from biv.config.training import TrainingSpec
from biv.data import load_prepared
from biv.legacy import main, map_command
from biv.noise.files import read_draw_file, seed_draw

SMALL = ["--epochs=1", "--image-size=64", "--device=cpu"]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("legacy-cache")


def run_legacy(
    command: str | list[str], out: Path, cache: Path, data_dir: Path, sizes=(200, 100)
) -> dict:
    """Run one command; check the run folder and return what it wrote."""
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    argv += [*SMALL, f"--train-size={sizes[0]}", f"--test-size={sizes[1]}"]
    argv += [f"--out={out}", f"--cache-dir={cache}", f"--data-dir={data_dir}"]
    assert main(argv) == 0
    for name in ("params.json", "legacy.json", "run.json", "summary.json", "metrics.csv"):
        assert (out / name).is_file(), name
    assert not (out / "checkpoint.pt").exists()
    mapped = map_command(argv, environ={})
    run_params = json.loads((out / "params.json").read_text())
    run_json = json.loads((out / "run.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    # the run folder holds exactly the mapped parameters, every default filled in
    for key in ("experiment", "loss_name", "seed"):
        assert run_params[key] == mapped[key], key
    assert run_params["model"] == ModelSpec.from_config("model", mapped["model"]).to_dict()
    training = TrainingSpec.from_config("training", mapped["training"]).to_dict()
    assert run_params["training"] == training
    for key in ("experiment", "loss_name", "seed"):
        assert run_json[key] == summary[key] == mapped[key]
    assert run_json["training"]["shuffle"] is False
    assert (run_json["run"]["n_train"], run_json["run"]["n_test"]) == sizes
    assert summary["steps"] == -(-sizes[0] // mapped["training"]["batch_size"])  # one epoch
    data = load_prepared(run_params["dataset"]["file"])
    assert data["meta"]["split_seed"] == 0
    assert Path(run_params["dataset"]["file"]).parent == cache
    if mapped["noise"] is None:
        assert run_params["noise"] is None and not (out / "noise.npz").exists()
    else:
        # the run's noise: drawn with the original seed from the resolved setting
        record = read_draw_file(run_params["noise"]["file"])["setting"]
        setting = resolve(mapped["noise"])
        assert record == setting.to_dict() and NoiseSpec.from_dict(record) == setting
        noise_meta = run_json["run"]["noise_meta"]
        assert noise_meta["params"] == record and noise_meta["seed"] == mapped["seed"]
    return {"mapped": mapped, "params": run_params, "summary": summary, "data": data}


def test_seed_era_example_runs(legacy, data_dir, cache_dir, tmp_path):
    got = run_legacy(legacy.SEED_EXAMPLE, tmp_path / "run", cache_dir, data_dir)
    assert got["params"]["loss"] == {"type": "mse"}
    assert got["params"]["model"] == {"name": "cnn"}
    assert got["data"]["x_train"].shape == (200, 3, 64, 64)


def test_final_utkf_cutoff_example_runs_with_the_default_threshold(
    legacy, data_dir, cache_dir, tmp_path
):
    got = run_legacy(legacy.UTKF_EXAMPLE, tmp_path / "run", cache_dir, data_dir)
    # the original's default threshold: 1 in normalized units = y_std**2 in raw units
    threshold = got["params"]["loss"]["threshold"]
    assert threshold == pytest.approx(got["data"]["y_std"] ** 2)
    assert got["params"]["loss"]["type"] == "cutoff"
    # U(0.23, 0.77) is kept, the other component (mean 5999.5) is cut
    draw = seed_draw(read_draw_file(got["params"]["noise"]["file"]), got["params"]["seed"])
    assert bool(((draw.var < threshold) == (draw.component == 0)).all())
    # both UTKFace commands share one prepared file: the seed-era example maps to the same
    # dataset (the cache's file name is a hash of it), whichever ran first
    seed_era = [*shlex.split(legacy.SEED_EXAMPLE), *SMALL, "--train-size=200", "--test-size=100"]
    seed_era += [f"--out={tmp_path / 'seed'}", f"--cache-dir={cache_dir}", f"--data-dir={data_dir}"]
    assert map_command(seed_era, environ={})["dataset"] == got["mapped"]["dataset"]


def test_final_bike_gamma_example_runs_and_resumes(legacy, data_dir, cache_dir, tmp_path):
    out = tmp_path / "run"
    got = run_legacy(legacy.BIKE_EXAMPLE, out, cache_dir, data_dir)
    assert got["params"]["loss"] == {"type": "biv", "epsilon": 0.5}
    assert got["params"]["training"]["lr"] == 0.001
    first = (out / "metrics.csv").read_text()
    # the same command again reuses the folder and gives the same metrics
    assert run_legacy(legacy.BIKE_EXAMPLE, out, cache_dir, data_dir)["summary"]["steps"] == 1
    assert (out / "metrics.csv").read_text() == first
    # a different experiment may not reuse it
    other = shlex.split(legacy.BIKE_EXAMPLE.replace("biv,0.5", "biv,0.2"))
    argv = [*other, *SMALL, f"--out={out}", f"--cache-dir={cache_dir}", f"--data-dir={data_dir}"]
    argv += ["--train-size=200", "--test-size=100"]
    assert main(argv) == 2


@pytest.mark.parametrize(
    ("dataset", "family", "mode", "var_scale"),
    [
        ("wine", "binary_uniform", "meanvar", "True"),
        ("bike", "uniform", "boundaries", None),
        ("bike", "gamma", "meanvar_avg", "False"),
        ("wine", "binary_uniform", "meanvar_avg", "True"),
    ],
)
def test_noise_combinations_run(
    legacy, data_dir, cache_dir, tmp_path, dataset, family, mode, var_scale
):
    argv = legacy.final_noise_argv(family, mode, var_scale)
    argv[0] = f"--experiment_settings=combo,5,{dataset},True,200"
    got = run_legacy(argv, tmp_path / "run", cache_dir, data_dir)
    assert got["params"]["noise"]["name"] == "combo"
    expected_model = {"name": "mlp", "hidden": [100, 50, 20, 10], "batchnorm": dataset == "wine"}
    assert got["params"]["model"] == expected_model


def test_iv_baseline_without_noise_runs(data_dir, cache_dir, tmp_path):
    command = [
        "--experiment_settings=clean,3,wine,True,4000",
        "--model_settings=vanilla_ann,biv,0.5",
        "--noise_settings=False",
        "--extra_exp=64,0,False,0.01",
    ]
    got = run_legacy(command, tmp_path / "run", cache_dir, data_dir)
    assert got["params"]["loss"] == {"type": "iv", "epsilon": 0.5}
    assert got["summary"]["steps"] == 4  # batch 64


@pytest.mark.slow
def test_seed_era_threshold_and_resnet_run(data_dir, cache_dir, tmp_path):
    wine = [
        "--exp_settings=filt,9,wine,True,mse,vanilla_ann,-1",
        "--noise_settings=True,gamma,False,False,1,1,True,2",
        "--noise_params=1,1",
    ]
    got = run_legacy(wine, tmp_path / "wine", cache_dir, data_dir)
    assert got["params"]["loss"] == {"type": "cutoff", "threshold": 2.0}
    resnet = [
        "--exp_settings=res,4,True,iv,resnet,-1",
        "--noise_settings=True,uniform,True,-1,1,-1",
        "--estim_noise_params=50,1",
    ]
    got = run_legacy(resnet, tmp_path / "resnet", cache_dir, data_dir, sizes=(24, 8))
    assert got["params"]["model"] == {"name": "resnet18"}
    assert got["params"]["loss"] == {"type": "iv", "epsilon": 1.0}
