"""biv legacy: the original command lines parsed and mapped onto run parameters.

Pure parsing and mapping (no data, no training); tests/test_legacy_run.py runs commands end to end.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import torch

from biv.cli import main as cli_main
from biv.config.dataset import PUBLISHER_URLS
from biv.config.noise import resolve
from biv.legacy import LegacyArgError, main, map_command
from biv.legacy.mapping import workflow_config
from biv.noise import draws as noise

# The seed README's 8-field example (commit 44206f4d).
SEED_README_EXAMPLE = (
    '--exp_settings="exp_tag,1001,utkf,True,mse,0.001,vanilla_cnn,5000" '
    '--noise_settings="True,uniform,True,False,0.5,1,False,3" '
    '--noise_params="0,0,0,0" --estim_noise_params="0.52,500,0.09,0"'
)
BIKE_MLP = {"name": "mlp", "hidden": [100, 50, 20, 10], "batchnorm": False}
WINE_MLP = {"name": "mlp", "hidden": [100, 50, 20, 10], "batchnorm": True}


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    return tmp_path


def mapped(command: str | list[str], data_root: Path | None = None, **env: str) -> dict:
    argv = shlex.split(command) if isinstance(command, str) else command
    if data_root is not None:
        env.setdefault("BIV_DATA_DIR", str(data_root))
    return map_command(argv, environ=env)


def training(lr: float, epochs: int, *, batch_size: int = 256, normalize: bool = True) -> dict:
    return {
        "lr": lr,
        "batch_size": batch_size,
        "epochs": epochs,
        "eval_every": 1,
        "shuffle": False,
        "normalize": normalize,
        "device": "auto",
    }


# ------------------------------------------------------------------------ the issue's examples


def test_seed_era_example_field_by_field(legacy, data_root):
    m = mapped(legacy.SEED_EXAMPLE, data_root)
    assert m["family"] == "seed"
    assert m["experiment"] == "classical_1_7159"
    assert m["seed"] == 7159
    assert m["loss_name"] == "mse"
    assert m["dataset"] == {
        "name": "utkf",
        "config": {
            "kind": "utkface",
            "path": str(data_root / "utkface"),
            "train_size": 16000,
            "test_size": 23708 - 16000,
            "split_seed": 0,
        },
    }
    assert m["noise"] == {
        "mode": "meanvar",
        "distribution": "uniform",
        "components": [{"mean": 0.52, "var": 0.09}, {"mean": 500.0, "var": 0.0}],
        "p": 1.0,
        "variance_disturbance": 0.0,
    }
    assert m["loss"] == {"type": "mse"}
    assert m["model"] == {"name": "cnn"}
    assert m["training"] == training(0.001, 20)
    assert m["out_dir"] == "results/legacy/classical_1_7159"
    assert m["cache_dir"] == "results/legacy/_prepared"
    # p = 1: the average mean 5000 does not override mu2 (as in the original)
    assert any("average_mean is ignored" in n for n in m["notes"])
    record = resolve(m["noise"]).to_dict()
    assert record["components"][1]["params"] == {"a": 500.0, "b": 500.0}


def test_final_utkf_cutoff_example_field_by_field(legacy, data_root):
    m = mapped(legacy.UTKF_EXAMPLE, data_root)
    assert m["family"] == "final"
    assert (m["experiment"], m["seed"], m["loss_name"]) == ("exp_tag", 7159, "cutoff")
    assert m["dataset"] == {
        "name": "utkf",
        "config": {
            "kind": "utkface",
            "path": str(data_root / "utkface"),
            "train_size": 16000,
            "test_size": 4000,
            "split_seed": 0,
        },
    }
    # var_scale=True: the V1 slot (0.3) scales Vmax of both distributions; mu2 (1) and v2 (0)
    # are replaced by the average-variance rule
    assert m["noise"] == {
        "mode": "meanvar_avg",
        "distribution": "uniform",
        "components": [{"mean": 0.5, "var_scale": 0.3}, {"var_scale": 0.3}],
        "p": 0.5,
        "average_mean": 3000.0,
        "variance_disturbance": 0.0,
    }
    # no threshold given: the original's default 1 in normalized units, set after preparation
    assert m["loss"] == {"type": "cutoff", "threshold": None}
    assert m["model"] == {"name": "cnn"}
    assert m["training"] == training(0.01, 20)  # --extra_exp default 256,0,True,0.01
    record = resolve(m["noise"]).to_dict()
    assert record["components"][1]["mean"] == pytest.approx((3000 - 0.5 * 0.5) / 0.5)
    assert record["mean"] == pytest.approx(3000.0)


def test_final_bike_gamma_example_field_by_field(legacy, data_root):
    m = mapped(legacy.BIKE_EXAMPLE, data_root)
    assert m["family"] == "final"
    assert (m["experiment"], m["seed"], m["loss_name"]) == ("exp_tag", 7159, "biv")
    assert m["dataset"] == {
        "name": "bike",
        "config": {
            "kind": "bike",
            "path": str(data_root / "bike-sharing"),
            "train_size": 14000,
            "test_size": 3379,
            "split_seed": 0,
        },
    }
    assert m["noise"] == {
        "mode": "alphabeta",
        "distribution": "gamma",
        "components": [{"shape": 1.0, "rate": 0.00005}],
        "p": 1.0,
        "variance_disturbance": 0.0,
    }
    assert m["loss"] == {"type": "biv", "epsilon": 0.5}
    assert m["model"] == BIKE_MLP
    assert m["training"] == training(0.001, 100)
    assert m["notes"] == []
    assert resolve(m["noise"]).mixture.mean == pytest.approx(20000.0)


def test_seed_readme_eight_field_example(data_root):
    m = mapped(SEED_README_EXAMPLE, data_root)
    assert (m["experiment"], m["seed"], m["loss"], m["model"]) == (
        "exp_tag",
        1001,
        {"type": "mse"},
        {"name": "cnn"},
    )
    assert m["noise"]["components"] == [{"mean": 0.52, "var": 0.09}, {"mean": 500.0, "var": 0.0}]


@pytest.mark.parametrize("equals", [True, False])
def test_flag_value_and_flag_equals_value_both_work(legacy, data_root, equals):
    argv = shlex.split(legacy.BIKE_EXAMPLE)
    if not equals:
        argv = [part for a in argv for part in a.split("=", 1)]
    assert len(argv) == (6 if equals else 12)
    assert mapped(argv, data_root) == mapped(legacy.BIKE_EXAMPLE, data_root) | {"argv": argv}


def test_cli_dispatches_legacy(legacy, data_root, capsys, monkeypatch):
    monkeypatch.setenv("BIV_DATA_DIR", str(data_root))
    assert cli_main(["legacy", *shlex.split(legacy.BIKE_EXAMPLE), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("biv legacy: final command mapped to:")
    assert '"rate": 5e-05' in out


# ------------------------------------------------------------------------ seed-era forms


@pytest.mark.parametrize(
    ("exp_settings", "dataset", "loss", "model"),
    [
        # 5 fields (279887c0): UTKFace, CNN, the seed-era IVLoss's hard-coded epsilon 1
        ("t,3,True,biv,-1", "utkf", {"type": "biv", "epsilon": 1.0}, {"name": "cnn"}),
        # 6 fields (16d6c658): + model
        ("t,3,True,iv,resnet,-1", "utkf", {"type": "iv", "epsilon": 1.0}, {"name": "resnet18"}),
        # 7 fields (b613b590): + dataset
        ("t,3,wine,True,mse,vanilla_ann,-1", "wine", {"type": "mse"}, WINE_MLP),
        # 8 fields (1e8d6252): + epsilon
        ("t,3,utkf,True,biv,0.001,vanilla_cnn,-1", "utkf", {"type": "biv", "epsilon": 0.001},
         {"name": "cnn"}),
    ],
)  # fmt: skip
def test_seed_era_exp_settings_forms(data_root, exp_settings, dataset, loss, model):
    m = mapped(
        [
            f"--exp_settings={exp_settings}",
            "--noise_settings=True,uniform,False,False,1,1,False,3",
            "--noise_params=0,1",
        ],
        data_root,
    )
    assert (m["seed"], m["dataset"]["name"], m["loss"], m["model"]) == (3, dataset, loss, model)
    assert m["dataset"]["config"]["train_size"] == {"utkf": 16000, "wine": 4000}[dataset]
    assert m["training"] == training(0.001, 20)
    assert m["noise"] == {
        "mode": "boundaries",
        "distribution": "uniform",
        "components": [{"a": 0.0, "b": 1.0}],
        "p": 1.0,
        "variance_disturbance": 0.0,
    }


def test_seed_era_average_mean_overrides_mu2_when_p_below_one(data_root):
    m = mapped(
        [
            "--exp_settings=t,1,True,biv,2000",
            "--noise_settings=True,uniform,True,False,1,0.5,False,3",
            "--noise_params=0,0,0,0",
            "--estim_noise_params=0.5,500,0.083,0",
        ],
        data_root,
    )
    assert m["noise"] == {
        "mode": "meanvar_avg",
        "distribution": "uniform",
        "components": [{"mean": 0.5, "var": 0.083}, {"var": 0.0}],
        "p": 0.5,
        "average_mean": 2000.0,
        "variance_disturbance": 0.0,
    }
    assert resolve(m["noise"]).mixture.components[1].mean == pytest.approx(3999.5)


def test_seed_era_max_heteroscedasticity_scales_every_distribution(data_root):
    m = mapped(
        [
            "--exp_settings=t,1,True,mse,-1",
            "--noise_settings=True,uniform,True,True,0.3,0.5,False,3",
            "--estim_noise_params=0.5,1000,99,0",
        ],
        data_root,
    )
    assert m["noise"]["mode"] == "meanvar"
    assert m["noise"]["components"] == [
        {"mean": 0.5, "var_scale": 0.3},
        {"mean": 1000.0, "var_scale": 0.3},
    ]


def test_seed_era_gamma_from_shape_and_rate(data_root):
    m = mapped(
        [
            "--exp_settings=t,1,True,mse,-1",
            "--noise_settings=True,gamma,False,False,1,1,False,3",
            "--noise_params=1,0.001",
        ],
        data_root,
    )
    assert m["noise"] == {
        "mode": "alphabeta",
        "distribution": "gamma",
        "components": [{"shape": 1.0, "rate": 0.001}],
        "p": 1.0,
        "variance_disturbance": 0.0,
    }


@pytest.mark.parametrize(
    "noise_settings",
    ["True,uniform,False,False,0.5,1,True,3", "True,uniform,False,-1,1,3"],  # 8- and 6-field
)
def test_seed_era_threshold_filter_maps_to_cutoff(data_root, noise_settings):
    m = mapped(
        [
            "--exp_settings=t,1,True,mse,-1",
            f"--noise_settings={noise_settings}",
            "--noise_params=0,10",
        ],
        data_root,
    )
    assert (m["loss"], m["loss_name"]) == ({"type": "cutoff", "threshold": 3.0}, "cutoff")


def test_seed_era_six_field_noise_settings(data_root):
    m = mapped(
        [
            "--exp_settings=t,1,True,mse,-1",
            "--noise_settings=True,uniform,True,0.5,0.25,-1",
            "--estim_noise_params=1,10,0,0",
        ],
        data_root,
    )
    assert m["loss"] == {"type": "mse"}
    assert m["noise"]["components"] == [
        {"mean": 1.0, "var_scale": 0.5},
        {"mean": 10.0, "var_scale": 0.5},
    ]
    assert m["noise"]["p"] == 0.25


def test_seed_era_noise_false(data_root):
    m = mapped(["--exp_settings=t,1,True,biv,-1", "--noise_settings=False"], data_root)
    assert m["noise"] is None


# ------------------------------------------------------------------------ final family: losses


@pytest.mark.parametrize(
    ("model_settings", "extra_exp", "loss"),
    [
        ("vanilla_ann,mse", None, {"type": "mse"}),
        ("vanilla_ann,biv", None, {"type": "biv", "epsilon": 0.1}),  # settings default epsilon
        ("vanilla_ann,biv,0.5", "256,0,True,0.01", {"type": "biv", "epsilon": 0.5}),
        # normalize_loss=False divides by the batch size: the IV baseline
        ("vanilla_ann,biv,0.5", "256,0,False,0.01", {"type": "iv", "epsilon": 0.5}),
        # the original's iv fell through to MSE; here it is IV
        ("vanilla_ann,iv,0.2", None, {"type": "iv", "epsilon": 0.2}),
        ("vanilla_ann,cutoffMSE,5000", None, {"type": "cutoff", "threshold": 5000.0}),
        ("vanilla_ann,cutoffMSE", None, {"type": "cutoff", "threshold": None}),
    ],
)
def test_final_loss_mapping(data_root, model_settings, extra_exp, loss):
    argv = [
        "--experiment_settings=t,1,bike,True,7000",
        f"--model_settings={model_settings}",
        "--noise_settings=False",
    ]
    if extra_exp is not None:
        argv.append(f"--extra_exp={extra_exp}")
    m = mapped(argv, data_root)
    assert m["loss"] == loss
    assert m["loss_name"] == loss["type"]


def test_third_model_field_of_mse_is_ignored_with_a_note_as_the_original(legacy, data_root):
    # the original README's own example: --model_settings=vanilla_cnn,mse,0.5
    m = mapped(
        legacy.UTKF_EXAMPLE.replace("vanilla_cnn,cutoffMSE", "vanilla_cnn,mse,0.5"), data_root
    )
    assert m["loss"] == {"type": "mse"}
    assert (
        "--model_settings field 3 (0.5) ignored, as the original did "
        "[format: model,loss[,epsilon_or_threshold]]"
    ) in m["notes"]
    # iv: the original trained plain MSE; here the field is the IV loss's epsilon, with a note
    argv = ["--experiment_settings=t,1,bike,True,7000", "--noise_settings=False"]
    m = mapped([*argv, "--model_settings=vanilla_ann,iv,0.2"], data_root)
    assert m["loss"] == {"type": "iv", "epsilon": 0.2}
    assert m["notes"][1] == (
        "loss iv: the original had no IV loss (iv trained plain MSE and ignored field 3); "
        "here iv is the IV loss with epsilon 0.2"
    )
    m = mapped([*argv, "--model_settings=vanilla_ann,iv"], data_root)
    assert m["notes"][1].endswith("with epsilon 0.1 (the original's default)")


def test_trailing_fields_the_original_never_read_are_ignored_with_notes(data_root):
    argv = [
        "--experiment_settings=exp,7159,bike,True,14000,x",
        "--model_settings=vanilla_ann,biv,0.5,y,z",
        "--noise_settings=True,binary_uniform,w",
        "--params_settings=boundaries,0.5,3000",
        "--parameters=0,1000,1,3000",
        "--extra_exp=256,0,True,0.001,v",
    ]
    m = mapped(argv, data_root)
    assert m["loss"] == {"type": "biv", "epsilon": 0.5}
    assert m["dataset"]["config"]["train_size"] == 14000 and m["training"]["lr"] == 0.001
    assert m["noise"]["p"] == 0.5 and m["noise"]["mode"] == "boundaries"
    assert m["notes"] == [
        "--experiment_settings field 6 (x) ignored, as the original did "
        "[format: tag,seed,dataset,normalize,train_size]",
        "--extra_exp field 5 (v) ignored, as the original did "
        "[format: batch_size,var_disturbance,normalize_loss,lr]",
        "--model_settings fields 4-5 (y,z) ignored, as the original did "
        "[format: model,loss[,epsilon_or_threshold]]",
        "--noise_settings field 3 (w) ignored, as the original did "
        "[format: noise[,uniform|binary_uniform|gamma]]",
        "--params_settings field 3 (3000) ignored, as the original did "
        "[format: boundaries|alphabeta|meanvar|meanvar_avg[,p[,average_variance]]]",
    ]


@pytest.mark.parametrize(
    ("dataset", "model", "spec", "epochs"),
    [
        ("bike", "vanilla_ann", BIKE_MLP, 100),
        ("wine", "vanilla_ann", WINE_MLP, 20),
        ("utkf", "vanilla_cnn", {"name": "cnn"}, 20),
        ("utkf", "resnet", {"name": "resnet18"}, 20),
    ],
)
def test_final_model_and_epochs_per_dataset(data_root, dataset, model, spec, epochs):
    m = mapped(
        [
            f"--experiment_settings=t,1,{dataset},False,100",
            f"--model_settings={model},mse",
            "--noise_settings=False",
            "--extra_exp=64,0,True,0.005",
        ],
        data_root,
    )
    assert m["model"] == spec
    assert m["training"] == training(0.005, epochs, batch_size=64, normalize=False)
    assert (
        m["dataset"]["config"]["test_size"] == {"bike": 3379, "wine": 2491, "utkf": 4000}[dataset]
    )


def test_final_variance_disturbance_and_batchsize_flag(data_root):
    base = ["--experiment_settings=t,1,bike,True,7000", "--model_settings=vanilla_ann,biv"]
    noisy = ["--noise_settings=True,gamma", "--params_settings=alphabeta", "--parameters=1,0.001"]
    m = mapped([*base, *noisy, "--extra_exp=128,0.5,True,0.001"], data_root)
    assert m["noise"]["variance_disturbance"] == 0.5
    assert m["training"]["batch_size"] == 128
    # the earlier --batchsize flag (0054f8ad) sets the batch size alone
    m = mapped([*base, "--noise_settings=False", "--batchsize=32"], data_root)
    assert (m["training"]["batch_size"], m["training"]["lr"]) == (32, 0.01)


# ------------------------------------------------------------------------ final family: noise

FAMILIES = ("uniform", "binary_uniform", "gamma")
MODES = ("boundaries", "alphabeta", "meanvar", "meanvar_avg")
BOUNDS_1 = [{"a": 0.0, "b": 10.0}]
BOUNDS_2 = [{"a": 0.0, "b": 1.0}, {"a": 1000.0, "b": 3000.0}]
GAMMA_1 = [{"shape": 1.0, "rate": 0.00005}]
AVG_UNIFORM = [{"mean": 0.5, "var": 0.083}, {"var": 0.0}]
AVG_GAMMA = [{"mean": 1000.0, "var": 1e6}, {"var": 4e8}]
EXPECTED = {  # (noise type, params type, var_scale) -> (mode, distribution, components, p)
    ("uniform", "boundaries", False): ("boundaries", "uniform", BOUNDS_1, 1.0),
    ("uniform", "alphabeta", False): ("boundaries", "uniform", BOUNDS_1, 1.0),
    ("uniform", "meanvar", False): ("meanvar", "uniform", [{"mean": 0.5, "var": 0.083}], 1.0),
    ("uniform", "meanvar", True): ("meanvar", "uniform", [{"mean": 0.5, "var_scale": 0.3}], 1.0),
    ("uniform", "meanvar_avg", False): ("meanvar_avg", "uniform", AVG_UNIFORM, 0.5),
    ("uniform", "meanvar_avg", True): (
        "meanvar_avg", "uniform", [{"mean": 0.5, "var_scale": 0.3}, {"var_scale": 0.3}], 0.5),
    ("binary_uniform", "boundaries", False): ("boundaries", "uniform", BOUNDS_2, 0.5),
    ("binary_uniform", "alphabeta", False): ("boundaries", "uniform", BOUNDS_2, 0.5),
    ("binary_uniform", "meanvar", False): (
        "meanvar", "uniform", [{"mean": 0.5, "var": 0.083}, {"mean": 1000.0, "var": 0.0}], 0.5),
    ("binary_uniform", "meanvar", True): (
        "meanvar", "uniform", [{"mean": 0.5, "var_scale": 0.3}, {"mean": 1000.0, "var_scale": 0.3}],
        0.5),
    ("binary_uniform", "meanvar_avg", False): ("meanvar_avg", "uniform", AVG_UNIFORM, 0.5),
    ("binary_uniform", "meanvar_avg", True): (
        "meanvar_avg", "uniform", [{"mean": 0.5, "var_scale": 0.3}, {"var_scale": 0.3}], 0.5),
    ("gamma", "boundaries", False): ("alphabeta", "gamma", GAMMA_1, 1.0),
    ("gamma", "alphabeta", False): ("alphabeta", "gamma", GAMMA_1, 1.0),
    ("gamma", "meanvar", False): ("meanvar", "gamma", [{"mean": 20000.0, "var": 4e8}], 1.0),
    # var_scale is for uniform noise only: the original used the v slot as a variance
    ("gamma", "meanvar", True): ("meanvar", "gamma", [{"mean": 20000.0, "var": 4e8}], 1.0),
    ("gamma", "meanvar_avg", False): ("meanvar_avg", "gamma", AVG_GAMMA, 0.5),
    ("gamma", "meanvar_avg", True): ("meanvar_avg", "gamma", AVG_GAMMA, 0.5),
}  # fmt: skip


COMBINATIONS = [
    (family, mode, var_scale)
    for family in FAMILIES
    for mode in MODES
    for var_scale in (None, "False", "True")
    if var_scale != "True" or mode.startswith("meanvar")
]


@pytest.mark.parametrize(("family", "mode", "var_scale"), COMBINATIONS)
def test_every_final_noise_combination_parses_resolves_and_draws(
    legacy, data_root, family, mode, var_scale
):
    m = mapped(legacy.final_noise_argv(family, mode, var_scale), data_root)
    want_mode, distribution, components, p = EXPECTED[(family, mode, var_scale == "True")]
    expected = {
        "mode": want_mode,
        "distribution": distribution,
        "components": components,
        "p": p,
        "variance_disturbance": 0.0,
    }
    if want_mode == "meanvar_avg":
        expected["average_mean"] = 3000.0
    assert m["noise"] == expected
    setting = resolve(m["noise"])
    if want_mode == "meanvar_avg":
        assert setting.mixture.mean == pytest.approx(3000.0)
    draw = noise.draw(torch.linspace(0, 100, 64), setting, seed=5)
    assert bool((draw.var >= 0).all())


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("mode", ["boundaries", "alphabeta"])
def test_var_scale_true_needs_a_meanvar_mode(legacy, data_root, family, mode):
    argv = legacy.final_noise_argv(family, mode, "False")
    argv[-1] = argv[-1].replace("False", "True")
    with pytest.raises(LegacyArgError, match=r"^--parameters field 1 \(var_scale\): got 'True'"):
        mapped(argv, data_root)


def test_final_noise_false_ignores_the_parameter_flags(legacy, data_root):
    argv = legacy.final_noise_argv("gamma", "alphabeta", None)
    argv[2] = "--noise_settings=False"
    m = mapped(argv, data_root)
    assert m["noise"] is None
    assert m["notes"][-1] == "noise is False: --params_settings and --parameters are ignored"


def test_var_scale_zero_is_a_point_mass(legacy, data_root):
    m = mapped(
        legacy.final_noise_argv("uniform", "meanvar", "True")[:-1] + ["--parameters=True,4,0"]
    )
    assert m["noise"]["components"] == [{"mean": 4.0, "var": 0.0}]


# ------------------------------------------------------------------------ overrides and data


def test_size_device_and_output_overrides(legacy, data_root, tmp_path):
    m = mapped(
        [
            *shlex.split(legacy.UTKF_EXAMPLE),
            "--epochs=1",
            "--train-size",
            "200",
            "--test-size=100",
            "--image-size=64",
            "--device=cpu",
            f"--out={tmp_path / 'run'}",
            f"--cache-dir={tmp_path / 'cache'}",
        ],
        data_root,
    )
    cfg = m["dataset"]["config"]
    assert (cfg["train_size"], cfg["test_size"], cfg["image_size"]) == (200, 100, 64)
    assert (m["training"]["epochs"], m["training"]["device"]) == (1, "cpu")
    assert (m["out_dir"], m["cache_dir"]) == (str(tmp_path / "run"), str(tmp_path / "cache"))


def test_image_size_is_ignored_for_tabular_data(legacy, data_root):
    m = mapped([*shlex.split(legacy.BIKE_EXAMPLE), "--image-size=64"], data_root)
    assert "image_size" not in m["dataset"]["config"]
    assert m["notes"] == ["--image-size is ignored for dataset bike"]


def test_builtin_locations_without_a_data_dir(legacy):
    assert mapped(legacy.BIKE_EXAMPLE)["dataset"]["config"]["url"] == PUBLISHER_URLS["bike"]
    wine = legacy.BIKE_EXAMPLE.replace("bike,True,14000", "wine,True,4000")
    assert mapped(wine)["dataset"]["config"] == {
        "kind": "wine",
        "url": PUBLISHER_URLS["wine"],
        "train_size": 4000,
        "test_size": 2491,
        "split_seed": 0,
    }
    with pytest.raises(ValueError, match="UTKFace has no stable public URL.*--data-dir"):
        mapped(legacy.UTKF_EXAMPLE)


def test_data_dir_flag_wins_over_the_environment(legacy, tmp_path):
    flag_dir = tmp_path / "flag"
    flag_dir.mkdir()
    m = mapped(
        [*shlex.split(legacy.BIKE_EXAMPLE), f"--data-dir={flag_dir}"], BIV_DATA_DIR="/nowhere"
    )
    assert m["dataset"]["config"]["path"] == str(flag_dir / "bike-sharing")
    with pytest.raises(FileNotFoundError, match="^BIV_DATA_DIR: '/nowhere' is not a folder"):
        mapped(legacy.BIKE_EXAMPLE, BIV_DATA_DIR="/nowhere")


def test_data_config_by_name_or_kind(legacy, tmp_path):
    config = tmp_path / "paper.yaml"
    config.write_text(
        "download_dir: x\n"
        "datasets:\n"
        "  bike-7000: {kind: bike, url: https://example.org/b.zip, train_size: 7000,\n"
        "              test_size: 3379, split_seed: 3, sha256: {hour.csv: " + "a" * 64 + "}}\n"
        "  utkf: {kind: utkface, path: /data/faces, train_size: 1, test_size: 1,\n"
        "         image_size: 64}\n"
    )
    bike = mapped([*shlex.split(legacy.BIKE_EXAMPLE), f"--data-config={config}"])
    # location, checksums and split seed from the config; sizes from the command line
    assert bike["dataset"]["config"] == {
        "kind": "bike",
        "url": "https://example.org/b.zip",
        "sha256": {"hour.csv": "a" * 64},
        "split_seed": 3,
        "train_size": 14000,
        "test_size": 3379,
    }
    utkf = mapped([*shlex.split(legacy.UTKF_EXAMPLE), f"--data-config={config}"])
    assert utkf["dataset"]["config"] == {
        "kind": "utkface",
        "path": "/data/faces",
        "image_size": 64,
        "split_seed": 0,
        "train_size": 16000,
        "test_size": 4000,
    }
    # --data-dir replaces the configured location (a path wins over a url)
    local = mapped(
        [*shlex.split(legacy.BIKE_EXAMPLE), f"--data-config={config}", f"--data-dir={tmp_path}"]
    )
    assert local["dataset"]["config"]["path"] == str(tmp_path / "bike-sharing")
    assert "url" not in local["dataset"]["config"]
    wine = legacy.BIKE_EXAMPLE.replace("bike,True,14000", "wine,True,4000")
    with pytest.raises(ValueError, match=r"no dataset entry for 'wine' .*entries: \['bike-7000'"):
        mapped([*shlex.split(wine), f"--data-config={config}"])


def test_workflow_config_gives_the_same_run_parameters(legacy, data_root):
    """The equivalent workflow config validates and plans to exactly our run parameters."""
    snakemake_utils = pytest.importorskip("snakemake.utils")
    from biv.config import build_plan
    from biv.config.dataset import parse
    from biv.workflow.rule_params import run_spec

    root = Path(__file__).resolve().parents[1]
    for command in (
        legacy.BIKE_EXAMPLE,
        legacy.SEED_EXAMPLE,
        legacy.UTKF_EXAMPLE.replace("cutoffMSE", "mse"),
    ):
        m = mapped(command, data_root)
        config = workflow_config(m)
        snakemake_utils.validate(config, schema=str(root / "config" / "schema.yaml"))
        plan = build_plan(config)
        (exp,) = plan.experiments
        noise_file = None if m["noise"] is None else "noise.pt"
        got = run_spec(plan, exp, m["loss_name"], m["seed"], "data.pt", noise_file).to_dict()
        assert (got["seed"], got["loss"], got["model"]) == (m["seed"], m["loss"], m["model"])
        training = {k: v for k, v in m["training"].items() if k != "device"}
        assert {k: got["training"][k] for k in training} == training
        assert (plan.noise[exp].setting if exp in plan.noise else None) == m["noise"]
        assert plan.datasets[m["dataset"]["name"]].config == parse(
            m["dataset"]["name"], m["dataset"]["config"]
        )


def test_print_config_is_yaml_with_notes(legacy, data_root, capsys, monkeypatch):
    import yaml

    monkeypatch.setenv("BIV_DATA_DIR", str(data_root))
    assert main([*shlex.split(legacy.UTKF_EXAMPLE), "--print-config"]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].startswith("# biv legacy --experiment_settings=exp_tag")
    assert "# fill in losses.cutoff.threshold" in text
    config = yaml.safe_load(text)
    assert config["experiments"]["exp_tag"]["noise"] == "exp_tag"
    assert list(config) == ["datasets", "noise", "models", "losses", "experiments"]


# ------------------------------------------------------------------------ malformed strings

FINAL = {
    "experiment_settings": "exp,7159,bike,True,14000",
    "model_settings": "vanilla_ann,biv,0.5",
    "noise_settings": "True,gamma",
    "params_settings": "alphabeta",
    "parameters": "1,0.00005",
    "extra_exp": "256,0,True,0.001",
}
SEED = {
    "exp_settings": "t,7159,True,mse,5000",
    "noise_settings": "True,uniform,True,False,0.5,1,False,3",
    "noise_params": "0,0,0,0",
    "estim_noise_params": "0.52,500,0.09,0",
}
EXP_FORMAT = "[format: tag,seed,dataset,normalize,train_size]"
MODEL_FORMAT = "[format: model,loss[,epsilon_or_threshold]]"
NOISE_FORMAT = "[format: noise[,uniform|binary_uniform|gamma]]"
PARAMS_FORMAT = "[format: boundaries|alphabeta|meanvar|meanvar_avg[,p[,average_variance]]]"
GAMMA_VALUES = "[format: [False,]shape,rate or [False,]shape1,shape2,rate1,rate2 (gamma)]"
MEANVAR_VALUES = (
    "[format: [var_scale,]mu,v or [var_scale,]mu1,mu2,v1,v2 (var_scale=True: the v/v1 slot is s)]"
)
EXTRA_FORMAT = "[format: batch_size,var_disturbance,normalize_loss,lr]"
SEED_NOISE_FORMAT = (
    "[format: noise,noise_type,estimate_params,max_heteroscedasticity,hetero_scale,p,"
    "noise_threshold,threshold_value]"
)
UNIFORM_AVG = {"noise_settings": "True,uniform", "parameters": "0.5,1,0.083,0"}
BINARY = {"noise_settings": "True,binary_uniform", "parameters": "0.5,1,0.083,0"}
MALFORMED = [  # (base, changes (None removes a flag), the documented message)
    (FINAL, {"experiment_settings": "exp,7159,bike,True"},
     "--experiment_settings field 5 (train_size): missing (--experiment_settings="
     f"'exp,7159,bike,True' has 4 field(s)); allowed: an integer >= 1  {EXP_FORMAT}"),
    (FINAL, {"experiment_settings": "exp,abc,bike,True,14000"},
     f"--experiment_settings field 2 (seed): got 'abc'; allowed: an integer >= 0  {EXP_FORMAT}"),
    (FINAL, {"experiment_settings": "exp,7159,mnist,True,14000"},
     "--experiment_settings field 3 (dataset): got 'mnist'; allowed: utkf, wine, bike  "
     f"{EXP_FORMAT}"),
    (FINAL, {"experiment_settings": "exp,7159,bike,yes,14000"},
     f"--experiment_settings field 4 (normalize): got 'yes'; allowed: True or False  {EXP_FORMAT}"),
    (FINAL, {"experiment_settings": "exp,7159,bike,True,0"},
     "--experiment_settings field 5 (train_size): got '0'; allowed: an integer >= 1  "
     f"{EXP_FORMAT}"),
    (FINAL, {"experiment_settings": "exp,7159.5,bike,True,14000"},  # the original truncated it
     f"--experiment_settings field 2 (seed): got '7159.5'; allowed: an integer >= 0  {EXP_FORMAT}"),
    (FINAL, {"experiment_settings": "a/b,7159,bike,True,14000"},
     "--experiment_settings field 1 (tag): got 'a/b'; allowed: letters, digits and ._+=- not "
     "starting with a symbol (it names the default run folder results/legacy/<tag>), or pass "
     "--out DIR"),
    (FINAL, {"model_settings": "vanilla_cnn,biv"},
     "--model_settings field 1 (model): got 'vanilla_cnn'; allowed: vanilla_ann for dataset bike  "
     f"{MODEL_FORMAT}"),
    (FINAL, {"model_settings": "vanilla_ann,l1"},
     "--model_settings field 2 (loss): got 'l1'; allowed: mse, cutoffMSE, iv, biv  "
     f"{MODEL_FORMAT}"),
    (FINAL, {"model_settings": "vanilla_ann,biv,-1"},
     f"--model_settings field 3 (epsilon): got '-1'; allowed: a number >= 0  {MODEL_FORMAT}"),
    (FINAL, {"model_settings": "vanilla_ann,cutoffMSE,0"},
     "--model_settings field 3 (threshold C in raw label units^2): got '0'; allowed: a number > 0  "
     f"{MODEL_FORMAT}"),
    # the original took a negative threshold, and then every batch was skipped
    (FINAL, {"model_settings": "vanilla_ann,cutoffMSE,-5"},
     "--model_settings field 3 (threshold C in raw label units^2): got '-5'; allowed: a number > 0"
     f"  {MODEL_FORMAT}"),
    (FINAL, {"model_settings": None},
     f"--model_settings is required with --experiment_settings {MODEL_FORMAT}"),
    (FINAL, {"noise_settings": "maybe"},
     f"--noise_settings field 1 (noise): got 'maybe'; allowed: True or False  {NOISE_FORMAT}"),
    (FINAL, {"noise_settings": "True"},
     "--noise_settings field 2 (noise_type): missing (--noise_settings='True' has 1 field(s)); "
     f"allowed: uniform, binary_uniform, gamma  {NOISE_FORMAT}"),
    (FINAL, {"noise_settings": "True,laplace"},
     "--noise_settings field 2 (noise_type): got 'laplace'; allowed: uniform, binary_uniform, "
     f"gamma  {NOISE_FORMAT}"),
    (FINAL, {"params_settings": "bounds"},
     "--params_settings field 1 (params_type): got 'bounds'; allowed: boundaries, alphabeta, "
     f"meanvar, meanvar_avg  {PARAMS_FORMAT}"),
    (FINAL, {**BINARY, "params_settings": "meanvar"},
     "--params_settings field 2 (p, probability of distribution 1): missing (--params_settings="
     f"'meanvar' has 1 field(s)); allowed: a number in [0, 1]  {PARAMS_FORMAT}"),
    (FINAL, {**BINARY, "params_settings": "meanvar,1.5"},
     "--params_settings field 2 (p, probability of distribution 1): got '1.5'; allowed: a number "
     f"in [0, 1]  {PARAMS_FORMAT}"),
    (FINAL, {**UNIFORM_AVG, "params_settings": "meanvar_avg,0.5"},
     "--params_settings field 3 (average_variance X, the mean noise variance): missing "
     "(--params_settings='meanvar_avg,0.5' has 2 field(s)); allowed: a number > 0  "
     f"{PARAMS_FORMAT}"),
    (FINAL, {**BINARY, "params_settings": "meanvar_avg,1,3000"},
     "--params_settings field 2 (p, probability of distribution 1): got '1'; allowed: p < 1 with "
     f"meanvar_avg (mu2 = (X - p*mu1)/(1 - p))  {PARAMS_FORMAT}"),
    (FINAL, {**BINARY, "params_settings": "meanvar_avg,0.5,0.1"},
     "--params_settings field 3 (average_variance X, the mean noise variance): got '0.1'; allowed: "
     f"X > p*mu1 = 0.25, so that mu2 = (X - p*mu1)/(1 - p) > 0  {PARAMS_FORMAT}"),
    (FINAL, {"parameters": "1,abc"},
     "--parameters field 2 (rate (beta) of gamma distribution 1): got 'abc'; allowed: a number "
     f">= 0  {GAMMA_VALUES}"),
    (FINAL, {"parameters": "1,0.00005,2"},
     "--parameters field 4 (rate2 (beta) of gamma distribution 2): missing (--parameters="
     f"'1,0.00005,2' has 3 field(s)); allowed: a number >= 0  {GAMMA_VALUES}"),
    (FINAL, {"parameters": "1,2,3,4,5"},
     "--parameters field 5 (unexpected extra field): got '5'; allowed: 2 values (one "
     f"distribution) or 4 (two) in the layout {GAMMA_VALUES[9:-1]}  {GAMMA_VALUES}"),
    (FINAL, {"noise_settings": "True,uniform", "params_settings": "meanvar",
             "parameters": "True,0.5,1.5"},
     "--parameters field 3 (v slot = var_scale s (max-heteroscedasticity scale)): got '1.5'; "
     f"allowed: a number in [0, 1]  {MEANVAR_VALUES}"),
    (FINAL, {"parameters": None},
     "--parameters is required when noise is True "
     "[format: [False,]shape,rate or [False,]shape1,shape2,rate1,rate2 (gamma)]"),
    (FINAL, {"extra_exp": "256,0,True"},
     "--extra_exp field 4 (lr (learning rate)): missing (--extra_exp='256,0,True' has 3 field(s)); "
     f"allowed: a number > 0  {EXTRA_FORMAT}"),
    (FINAL, {"extra_exp": "0,0,True,0.01"},
     f"--extra_exp field 1 (batch_size): got '0'; allowed: an integer >= 1  {EXTRA_FORMAT}"),
    (FINAL, {"extra_exp": "256,-1,True,0.01"},
     f"--extra_exp field 2 (var_disturbance): got '-1'; allowed: a number >= 0  {EXTRA_FORMAT}"),
    (FINAL, {"extra_exp": "256,0,yes,0.01"},
     f"--extra_exp field 3 (normalize_loss): got 'yes'; allowed: True or False  {EXTRA_FORMAT}"),
    (FINAL, {"batchsize": "128"},
     "--batchsize and --extra_exp both set the batch size: give one"),
    (FINAL, {"exp_settings": "t,1,True,mse,5"},
     "--exp_settings (seed era) cannot be combined with --experiment_settings (final family)"),
    (FINAL, {"foo": "1"}, "unrecognized arguments: --foo=1 (see biv legacy --help)"),
    (SEED, {"exp_settings": "t,1,True,mse"},
     "--exp_settings field 5 (average_mean X, negative = off): missing (--exp_settings="
     "'t,1,True,mse' has 4 field(s)); allowed: a finite number  "
     "[format: tag,seed,normalize,loss,average_mean  (5-field form)]"),
    (SEED, {"exp_settings": "t,1,utkf,True,mse,0.1,vanilla_ann,5000"},
     "--exp_settings field 7 (model): got 'vanilla_ann'; allowed: vanilla_cnn, resnet for dataset "
     "utkf  [format: tag,seed,dataset,normalize,loss,epsilon,model,average_mean  (8-field form)]"),
    (SEED, {"exp_settings": "t,1,utkf,True,biv,abc,vanilla_cnn,5000"},
     "--exp_settings field 6 (epsilon): got 'abc'; allowed: a number >= 0  "
     "[format: tag,seed,dataset,normalize,loss,epsilon,model,average_mean  (8-field form)]"),
    (SEED, {"exp_settings": "t,1,bike,True,mse,vanilla_ann,-1"},
     "--exp_settings field 3 (dataset): got 'bike'; allowed: utkf, wine  "
     "[format: tag,seed,dataset,normalize,loss,model,average_mean  (7-field form)]"),
    (SEED, {"noise_settings": "True,uniform,True,False,0.5,1,False"},
     "--noise_settings field 8 (threshold_value in raw label units^2): missing (--noise_settings="
     "'True,uniform,True,False,0.5,1,False' has 7 field(s)); allowed: a finite number  "
     f"{SEED_NOISE_FORMAT}"),
    (SEED, {"noise_settings": "True,uniform,True,False,2,1,False,3"},
     "--noise_settings field 5 (hetero_scale): got '2'; allowed: a number in [0, 1]  "
     f"{SEED_NOISE_FORMAT}"),
    (SEED, {"noise_settings": "True,uniform,True,False,0.5,1,True,0"},
     "--noise_settings field 8 (threshold_value in raw label units^2): got '0'; allowed: a number "
     f"> 0  {SEED_NOISE_FORMAT}"),
    (SEED, {"noise_settings": "True,uniform,True,-0.5,1,-1"},
     "--noise_settings field 4 (hetero_scale (-1 = off)): got '-0.5'; allowed: -1 or a number in "
     "[0, 1]  [format: noise,noise_type,estimate_params,hetero_scale(-1=off),p,"
     "threshold_value(-1=off)]"),
    (SEED, {"exp_settings": "t,1,True,biv,5000",
            "noise_settings": "True,uniform,True,False,0.5,1,True,3"},
     "--exp_settings field 4 (loss): got 'biv'; allowed: mse when noise_threshold is on (maps to "
     "cutoff)  [format: tag,seed,normalize,loss,average_mean  (5-field form)]"),
    (SEED, {"exp_settings": "t,1,True,mse,0",
            "noise_settings": "True,uniform,True,False,0.5,0.5,False,3"},
     "--exp_settings field 5 (average_mean X, negative = off): got '0'; allowed: X > p*mu1 = 0.26, "
     "so that mu2 = (X - p*mu1)/(1 - p) > 0  "
     "[format: tag,seed,normalize,loss,average_mean  (5-field form)]"),
    (SEED, {"estim_noise_params": None},
     "--estim_noise_params is required when estimate_params is True [format: mu1,mu2,..,v1,v2,..]"),
    (SEED, {"estim_noise_params": "0.52,500,0.09"},
     "--estim_noise_params field 4 (v2: variance of the noise variance of distribution 2): missing "
     "(--estim_noise_params='0.52,500,0.09' has 3 field(s)); allowed: a number >= 0  "
     "[format: mu1,mu2,..,v1,v2,..]"),
    (SEED, {"noise_settings": "True,uniform,False,False,0.5,1,False,3", "noise_params": "0,-1"},
     "--noise_params field 2 (b: upper bound of distribution 1): got '-1'; allowed: a number >= 0  "
     "[format: a1,a2,..,b1,b2,.. (uniform) | shape1,..,rate1,.. (gamma)]"),
    ({}, {},
     "give --experiment_settings (final family: with --model_settings, --noise_settings, "
     "--params_settings, --parameters[, --extra_exp]) or --exp_settings (seed era: with "
     "--noise_settings, --noise_params, --estim_noise_params)"),
    (SEED, {"train-size": "0"}, "--train-size: got 0; allowed: an integer >= 1"),
]  # fmt: skip


def malformed_argv(base: dict, changes: dict) -> list[str]:
    flags = dict(base)
    for key, value in changes.items():
        if value is None:
            flags.pop(key)
        else:
            flags[key] = value
    return [f"--{key}={value}" for key, value in flags.items()]


@pytest.mark.parametrize(("base", "changes", "message"), MALFORMED)
def test_malformed_strings_give_the_documented_message(data_root, base, changes, message):
    with pytest.raises(LegacyArgError) as err:
        mapped(malformed_argv(base, changes), data_root)
    assert str(err.value) == message


def test_main_reports_errors_without_writing_anything(legacy, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BIV_DATA_DIR", str(tmp_path))
    argv = malformed_argv(FINAL, {"noise_settings": "True,laplace"})
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("biv legacy: error: --noise_settings field 2")
    # impossible settings found by biv.config are reported with the flags, before any output,
    # by a dry run as well
    argv = malformed_argv(
        FINAL, {"noise_settings": "True,uniform", "params_settings": "meanvar", "parameters": "1,5"}
    )
    for dry in ([], ["--dry-run"]):
        assert main([*argv, *dry]) == 2
        err = capsys.readouterr().err
        assert err.startswith("biv legacy: error: --noise_settings/--params_settings/--parameters")
        assert "components[0].var: 5.0 is not allowed" in err
    # the CNN needs 64x64 images at least
    argv = [*shlex.split(legacy.UTKF_EXAMPLE), "--image-size=32"]
    assert main(argv) == 2
    assert "(the images are 32x32: see --image-size)" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_help_exits_zero(capsys):
    assert main(["--help"]) == 0
    assert "--experiment_settings" in capsys.readouterr().out
