"""biv.train.models and biv.config.ModelSpec: the paper's networks, their output shapes, sizes and
spec validation."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from biv.config import ConfigError, ModelSpec
from biv.train.models import AgeCNN, build_model


def spec(cfg: dict) -> ModelSpec:
    return ModelSpec.from_config("model", cfg)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_bike_mlp_matches_the_paper():
    model = build_model(spec({"name": "mlp", "hidden": [100, 50, 20, 10]}), (19,))
    widths = [(m.in_features, m.out_features) for m in model if isinstance(m, nn.Linear)]
    assert widths == [(19, 100), (100, 50), (50, 20), (20, 10), (10, 1)]
    assert not any(isinstance(m, nn.BatchNorm1d) for m in model)
    assert n_params(model) == 19 * 100 + 100 + 100 * 50 + 50 + 50 * 20 + 20 + 20 * 10 + 10 + 11
    assert n_params(model) == 8291
    assert model(torch.randn(7, 19)).shape == (7, 1)


def test_wine_mlp_has_batchnorm_after_each_hidden_layer():
    model = build_model(spec({"name": "mlp", "batchnorm": True}), (11,))
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU"] * 4 + ["Linear"]
    assert n_params(model) == 7491 + 2 * (100 + 50 + 20 + 10)
    assert model(torch.randn(5, 11)).shape == (5, 1)


@pytest.mark.parametrize(("size", "flat"), [(200, 256 * 3 * 3), (64, 256)])
def test_cnn_linear_input_follows_the_image_size(size, flat):
    model = build_model(spec({"name": "cnn"}), (3, size, size))
    assert isinstance(model, AgeCNN)
    assert model.linear.in_features == flat
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [
        (3, 10),
        (10, 20),
        (20, 32),
        (32, 64),
        (64, 128),
        (128, 256),
    ]
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs)
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 3, size, size)).shape == (2, 1)


def test_cnn_rejects_images_below_64_pixels():
    with pytest.raises(ValueError, match="at least 64"):
        build_model(spec({"name": "cnn"}), (3, 63, 80))


def test_resnet18_regression_head():
    model = build_model(spec({"name": "resnet18"}), (3, 64, 64))
    assert isinstance(model.fc, nn.Linear)
    assert (model.fc.in_features, model.fc.out_features) == (512, 1)
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 3, 64, 64)).shape == (2, 1)


def test_spec_defaults_and_batchnorm_flag():
    mlp = spec({"name": "mlp"})
    assert mlp == ModelSpec("mlp", (100, 50, 20, 10), False)
    assert mlp.to_dict() == {"name": "mlp", "hidden": [100, 50, 20, 10], "batchnorm": False}
    assert not mlp.has_batchnorm
    assert spec({"name": "mlp", "batchnorm": True}).has_batchnorm
    assert spec({"name": "cnn"}).has_batchnorm and spec({"name": "resnet18"}).has_batchnorm
    assert spec({"name": "cnn"}).to_dict() == {"name": "cnn"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        mlp.batchnorm = True


@pytest.mark.parametrize(
    "cfg",
    [
        {"name": "mlp"},
        {"name": "mlp", "hidden": (7, 3), "batchnorm": True},
        {"name": "cnn"},
        {"name": "resnet18"},
    ],
)
def test_spec_round_trips_through_to_dict(cfg):
    model = spec(cfg)
    assert spec(model.to_dict()) == model
    assert isinstance(model.hidden, tuple)


@pytest.mark.parametrize(
    ("cfg", "key", "parts"),
    [
        ({"name": "vgg"}, "model.name", ["'vgg' is not allowed", "'mlp', 'cnn', 'resnet18'"]),
        ({"hidden": [3]}, "model.name", ["None is not allowed"]),
        ({"name": "mlp", "hidden": [10, 0]}, "model.hidden[1]", ["0 is not allowed", ">= 1"]),
        ({"name": "mlp", "hidden": [10, True]}, "model.hidden[1]", ["True is not allowed"]),
        ({"name": "mlp", "hidden": 10}, "model.hidden", ["10 is not allowed", "non-empty list"]),
        ({"name": "mlp", "hidden": []}, "model.hidden", ["[] is not allowed", "non-empty list"]),
        ({"name": "mlp", "batchnorm": "yes"}, "model.batchnorm", ["'yes' is not allowed"]),
        ({"name": "cnn", "hidden": [3]}, "model.hidden", ["unknown key", "allowed keys: name"]),
        ({"name": "resnet18", "batchnorm": True}, "model.batchnorm", ["unknown key"]),
        (
            {"name": "mlp", "dropout": 0.1},
            "model.dropout",
            ["unknown key", "allowed keys: batchnorm, hidden, name"],
        ),
        (["mlp"], "model", ["['mlp'] is not allowed", "a mapping"]),
    ],
)
def test_bad_specs_name_the_key(cfg, key, parts):
    with pytest.raises(ConfigError) as err:
        spec(cfg)
    assert err.value.key == key and str(err.value).startswith(f"{key}: ")
    for part in parts:
        assert part in str(err.value)


def test_input_kind_must_fit_the_model():
    with pytest.raises(ValueError, match="'mlp' needs tabular"):
        build_model(spec({"name": "mlp"}), (3, 64, 64))
    with pytest.raises(ValueError, match="'cnn' needs RGB images"):
        build_model(spec({"name": "cnn"}), (19,))
