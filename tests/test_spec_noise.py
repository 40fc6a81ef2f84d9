"""biv.config.noise.resolve: hand-computed records, purity, and a table of impossible settings."""

from __future__ import annotations

import copy
import json
import math

import pytest

from biv.config.distributions import Gamma, Mixture, Uniform
from biv.config.errors import ConfigError
from biv.config.noise import NoiseSpec, resolve


def uniform(a, b):
    return {"distribution": "uniform", "params": {"a": a, "b": b}}


def gamma(shape, rate):
    return {"distribution": "gamma", "params": {"shape": shape, "rate": rate}}


# (setting, expected components (family + params), p, mixture mean, mixture var), by hand
GOOD = {
    "boundaries": (
        {"mode": "boundaries", "components": [{"a": 1, "b": 3}]},
        [uniform(1, 3)],
        1.0,
        2.0,
        4 / 12,
    ),
    "boundaries_point_mass": (
        {"mode": "boundaries", "distribution": "uniform", "components": [{"a": 5, "b": 5}]},
        [uniform(5, 5)],
        1.0,
        5.0,
        0.0,
    ),
    "alphabeta": (
        {"mode": "alphabeta", "p": 1, "components": [{"shape": 2, "rate": 0.5}]},
        [gamma(2, 0.5)],
        1.0,
        4.0,
        8.0,
    ),
    "meanvar_uniform": (  # sqrt(3 * 0.75) = 1.5
        {"mode": "meanvar", "distribution": "uniform", "components": [{"mean": 2, "var": 0.75}]},
        [uniform(0.5, 3.5)],
        1.0,
        2.0,
        0.75,
    ),
    "meanvar_uniform_vmax": (  # v = mean^2/3 exactly: a = 0
        {"mode": "meanvar", "distribution": "uniform", "components": [{"mean": 3, "var": 3}]},
        [uniform(0, 6)],
        1.0,
        3.0,
        3.0,
    ),
    "var_scale_quarter": (  # half-width mean * sqrt(0.25) = 2; var = 0.25 * 16/3
        {
            "mode": "meanvar",
            "distribution": "uniform",
            "components": [{"mean": 4, "var_scale": 0.25}],
        },
        [uniform(2, 6)],
        1.0,
        4.0,
        4 / 3,
    ),
    "var_scale_one": (  # U(0, 2 mean)
        {"mode": "meanvar", "distribution": "uniform", "components": [{"mean": 3, "var_scale": 1}]},
        [uniform(0, 6)],
        1.0,
        3.0,
        3.0,
    ),
    "meanvar_gamma_shape_below_one": (  # shape = 4/8, rate = 2/8
        {"mode": "meanvar", "distribution": "gamma", "components": [{"mean": 2, "var": 8}]},
        [gamma(0.5, 0.25)],
        1.0,
        2.0,
        8.0,
    ),
    "meanvar_gamma_shape_above_one": (  # v < mean^2: rejected by the original, allowed here
        {"mode": "meanvar", "components": [{"distribution": "gamma", "mean": 2, "var": 1}]},
        [gamma(4, 2)],
        1.0,
        2.0,
        1.0,
    ),
    "meanvar_two_families": (  # var = .25*1 + .75*4/3 + .25*.75*(1 - 2)^2
        {
            "mode": "meanvar",
            "distribution": "gamma",
            "p": 0.25,
            "components": [
                {"mean": 1, "var": 1},
                {"distribution": "uniform", "mean": 2, "var_scale": 1},
            ],
        },
        [gamma(1, 1), uniform(0, 4)],
        0.25,
        1.75,
        1.4375,
    ),
    "meanvar_avg_readme": (  # mean2 = (1000 - .5*.5)/.5; var = .5*.083 + .25*(1999.5 - .5)^2
        {
            "mode": "meanvar_avg",
            "distribution": "uniform",
            "p": 0.5,
            "average_mean": 1000,
            "components": [{"mean": 0.5, "var": 0.083}, {"var": 0}],
        },
        [uniform(0.5 - math.sqrt(0.249), 0.5 + math.sqrt(0.249)), uniform(1999.5, 1999.5)],
        0.5,
        1000.0,
        999000.2915,
    ),
    "meanvar_avg_p0": (  # mean2 = X; shape 100/20, rate 10/20
        {
            "mode": "meanvar_avg",
            "distribution": "gamma",
            "p": 0,
            "average_mean": 10,
            "components": [{"mean": 1, "var": 1}, {"var": 20}],
            "variance_disturbance": 0.5,
        },
        [gamma(1, 1), gamma(5, 0.5)],
        0.0,
        10.0,
        20.0,
    ),
    "meanvar_avg_consistent_mean2": (  # mean2 = (100 - .8*10)/.2 = 460 may be stated
        {
            "mode": "meanvar_avg",
            "p": 0.8,
            "average_mean": 100,
            "components": [
                {"distribution": "gamma", "mean": 10, "var": 50},
                {"distribution": "uniform", "mean": 460, "var_scale": 1},
            ],
        },
        [gamma(2, 0.2), uniform(0, 920)],
        0.8,
        100.0,
        0.8 * 50 + 0.2 * 920**2 / 12 + 0.8 * 0.2 * 450**2,
    ),
}


@pytest.mark.parametrize("name", sorted(GOOD))
def test_resolve_hand_computed(name):
    setting, components, p, mean, var = GOOD[name]
    spec = resolve(setting)
    record = spec.to_dict()
    assert set(record) == {
        "mode",
        "p",
        "variance_disturbance",
        "mean",
        "var",
        "components",
        "setting",
    }
    assert record["mode"] == setting["mode"] and record["p"] == p
    assert record["variance_disturbance"] == setting.get("variance_disturbance", 0.0)
    assert record["mean"] == pytest.approx(mean, rel=1e-12)
    assert record["var"] == pytest.approx(var, rel=1e-9, abs=1e-12)
    assert record["setting"] == setting
    assert len(record["components"]) == len(components)
    for got, want in zip(record["components"], components, strict=True):
        assert got["distribution"] == want["distribution"]
        assert got["params"] == pytest.approx(want["params"], rel=1e-12, abs=1e-15)
        assert set(got) == {"distribution", "params", "mean", "var"}
    assert (spec.mixture.mean, spec.mixture.var) == (record["mean"], record["var"])
    assert NoiseSpec.from_dict(json.loads(json.dumps(record))) == spec


@pytest.mark.parametrize("name", sorted(GOOD))
def test_resolve_is_pure_and_json_serializable(name):
    setting = GOOD[name][0]
    before = copy.deepcopy(setting)
    record = resolve(setting).to_dict()
    assert setting == before
    text = json.dumps(record, allow_nan=False)
    assert json.loads(text) == record
    assert all(
        type(value) is float
        for c in record["components"]
        for value in [*c["params"].values(), c["mean"], c["var"]]
    )
    assert all(type(record[key]) is float for key in ("p", "variance_disturbance", "mean", "var"))
    again = resolve(copy.deepcopy(setting)).to_dict()
    assert json.dumps(again, sort_keys=True) == json.dumps(record, sort_keys=True)
    record["setting"]["mode"] = "changed"  # the record holds a copy
    assert setting == before


def test_tuple_components_give_the_same_record():
    setting = GOOD["meanvar_two_families"][0]
    assert resolve({**setting, "components": tuple(setting["components"])}) == resolve(setting)


def test_component_mean_and_var_per_family():
    record = resolve(GOOD["meanvar_two_families"][0]).to_dict()
    (g, u) = record["components"]
    assert (g["mean"], g["var"]) == (1.0, 1.0)
    assert u["mean"] == 2.0 and u["var"] == pytest.approx(16 / 12)


MV_U = {"mode": "meanvar", "distribution": "uniform"}
MV_G = {"mode": "meanvar", "distribution": "gamma"}
AVG = {"mode": "meanvar_avg", "distribution": "uniform", "p": 0.5, "average_mean": 1000}
TWO = [{"mean": 0.5, "var": 0.083}, {"var": 0}]

# (setting, key of the error relative to the setting, parts of the message after "<key>: ")
BAD = [
    # structure and keys
    ([1, 2], "", ["[1, 2] is not allowed", "a noise setting is a mapping"]),
    (
        {"components": [{"a": 0, "b": 1}]},
        "mode",
        ["missing is not allowed", "boundaries, alphabeta, meanvar"],
    ),
    ({"mode": "mean_var", "components": []}, "mode", ["'mean_var' is not allowed", "meanvar_avg"]),
    ({**AVG, "avg_mean": 1000, "components": TWO}, "avg_mean", ["unknown key", "average_mean"]),
    (
        {**MV_U, "average_mean": 3, "components": [{"mean": 1, "var": 0}]},
        "average_mean",
        ["unknown key; allowed keys: components, distribution, mode, p, variance_disturbance"],
    ),
    (
        {**MV_U, "components": [{"mean": 1, "varscale": 0.5}]},
        "components[0].varscale",
        ["unknown key", "var_scale"],
    ),
    (
        {"mode": "boundaries", "components": [{"a": 0, "b": 1, "mean": 0.5}]},
        "components[0].mean",
        ["unknown key", "allowed keys: a, b, distribution"],
    ),
    (
        {"mode": "boundaries"},
        "components",
        ["None is not allowed", "a list of 1 or 2 component dicts"],
    ),
    ({"mode": "boundaries", "components": []}, "components", ["[] is not allowed", "1 or 2"]),
    (
        {"mode": "boundaries", "p": 0.5, "components": [{"a": 0, "b": 1}] * 3},
        "components",
        ["is not allowed", "1 or 2"],
    ),
    (
        {"mode": "boundaries", "components": [5]},
        "components[0]",
        ["5 is not allowed", "must be a dict"],
    ),
    # families
    (
        {"mode": "meanvar", "distribution": "normal", "components": []},
        "distribution",
        ["'normal' is not allowed", "uniform, gamma"],
    ),
    (
        {"mode": "boundaries", "distribution": "gamma", "components": [{"a": 0, "b": 1}]},
        "distribution",
        ["'gamma' is not allowed", "mode 'boundaries' describes uniform components only"],
    ),
    (
        {"mode": "alphabeta", "components": [{"distribution": "uniform", "shape": 1, "rate": 1}]},
        "components[0].distribution",
        ["'uniform' is not allowed", "gamma components only"],
    ),
    (
        {"mode": "meanvar", "components": [{"mean": 1, "var": 0.1}]},
        "components[0].distribution",
        ["missing", "the setting's distribution is required", "uniform, gamma"],
    ),
    # boundaries and alphabeta
    (
        {"mode": "boundaries", "components": [{"a": -1, "b": 1}]},
        "components[0].a",
        ["-1.0 is not allowed", "a >= 0"],
    ),
    (
        {"mode": "boundaries", "components": [{"a": 3, "b": 1}]},
        "components[0].b",
        ["1.0 is not allowed", "b >= a = 3.0"],
    ),
    ({"mode": "boundaries", "components": [{"a": 3}]}, "components[0].b", ["missing", "required"]),
    (
        {"mode": "boundaries", "components": [{"a": 0, "b": math.inf}]},
        "components[0].b",
        ["inf is not allowed", "finite number"],
    ),
    (
        {"mode": "alphabeta", "components": [{"shape": 0, "rate": 1}]},
        "components[0].shape",
        ["0.0 is not allowed", "shape > 0"],
    ),
    (
        {"mode": "alphabeta", "components": [{"shape": 1, "rate": -1}]},
        "components[0].rate",
        ["-1.0 is not allowed", "rate > 0"],
    ),
    # meanvar uniform: the largest var for this mean is mean**2/3
    (
        {**MV_U, "components": [{"mean": 2, "var": 2}]},
        "components[0].var",
        ["2.0 is not allowed", "var <= mean**2/3 = 1.33333"],
    ),
    (
        {**MV_U, "components": [{"mean": 2, "var": -0.1}]},
        "components[0].var",
        ["-0.1 is not allowed", "0 <= var <= mean**2/3"],
    ),
    (
        {**MV_U, "components": [{"mean": -1, "var": 0}]},
        "components[0].mean",
        ["-1.0 is not allowed", "mean >= 0"],
    ),
    (
        {**MV_U, "components": [{"mean": 1, "var_scale": 0}]},
        "components[0].var_scale",
        ["0.0 is not allowed", "0 < var_scale <= 1"],
    ),
    (
        {**MV_U, "components": [{"mean": 1, "var_scale": 1.5}]},
        "components[0].var_scale",
        ["1.5 is not allowed", "0 < var_scale <= 1"],
    ),
    (
        {**MV_U, "components": [{"mean": 1, "var": 0.1, "var_scale": 0.5}]},
        "components[0]",
        ["needs exactly one of 'var' and 'var_scale' (got both)"],
    ),
    (
        {**MV_U, "components": [{"mean": 1}]},
        "components[0]",
        ["needs exactly one of 'var' and 'var_scale' (got neither)"],
    ),
    ({**MV_U, "components": [{"var": 1}]}, "components[0].mean", ["missing", "required"]),
    (
        {**MV_U, "components": [{"mean": "2", "var": 1}]},
        "components[0].mean",
        ["'2' is not allowed", "finite number"],
    ),
    (
        {**MV_U, "components": [{"mean": math.nan, "var": 1}]},
        "components[0].mean",
        ["nan is not allowed", "finite number"],
    ),
    (
        {**MV_U, "components": [{"mean": True, "var": 0}]},
        "components[0].mean",
        ["True is not allowed", "finite number"],
    ),
    # meanvar gamma
    (
        {**MV_G, "components": [{"mean": 2, "var": 0}]},
        "components[0].var",
        ["0.0 is not allowed", "var > 0"],
    ),
    (
        {**MV_G, "components": [{"mean": 2, "var": -4}]},
        "components[0].var",
        ["-4.0 is not allowed", "var > 0"],
    ),
    (
        {**MV_G, "components": [{"mean": 0, "var": 1}]},
        "components[0].mean",
        ["0.0 is not allowed", "mean > 0"],
    ),
    (
        {**MV_G, "components": [{"mean": 2, "var_scale": 0.5}]},
        "components[0].var_scale",
        ["0.5 is not allowed", "uniform only"],
    ),
    # p
    ({**MV_U, "components": TWO}, "p", ["missing", "required with 2 components", "0 <= p <= 1"]),
    ({**MV_U, "p": 1.5, "components": TWO}, "p", ["1.5 is not allowed", "0 <= p <= 1"]),
    ({**MV_U, "p": -0.1, "components": TWO}, "p", ["-0.1 is not allowed", "0 <= p <= 1"]),
    ({**MV_U, "p": "0.5", "components": TWO}, "p", ["'0.5' is not allowed", "finite number"]),
    (
        {**MV_U, "p": 0.5, "components": TWO[:1]},
        "p",
        ["0.5 is not allowed", "p must be 1 with one component"],
    ),
    # meanvar_avg
    (
        {**AVG, "p": 1, "components": TWO},
        "p",
        ["1.0 is not allowed", "meanvar_avg needs 0 <= p < 1"],
    ),
    (
        {**AVG, "average_mean": 0.2, "components": TWO},
        "average_mean",
        [
            "0.2 is not allowed",
            "= -0.1 <= 0",
            "need average_mean > p*components[0].mean = 0.25",
        ],
    ),
    (
        {k: v for k, v in AVG.items() if k != "average_mean"} | {"components": TWO},
        "average_mean",
        ["missing", "required"],
    ),
    (
        {**AVG, "components": TWO[:1]},
        "components",
        ["is not allowed", "meanvar_avg needs 2 components"],
    ),
    (
        {**AVG, "components": [TWO[0], {"mean": 500, "var": 0}]},
        "components[1].mean",
        ["500 is not allowed", "1999.5", "omit it"],
    ),
    # variance disturbance
    (
        {**MV_U, "variance_disturbance": -1, "components": TWO[:1]},
        "variance_disturbance",
        ["-1.0 is not allowed", ">= 0"],
    ),
    (
        {**MV_U, "variance_disturbance": math.inf, "components": TWO[:1]},
        "variance_disturbance",
        ["inf is not allowed", "finite number"],
    ),
]


@pytest.mark.parametrize(("setting", "key", "parts"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_settings_name_key_value_and_range(setting, key, parts):
    with pytest.raises(ConfigError) as err:
        resolve(setting)
    assert isinstance(err.value, ValueError)
    assert err.value.key == key
    assert str(err.value) == (f"{key}: {err.value.problem}" if key else err.value.problem)
    for part in parts:
        assert part in err.value.problem


@pytest.mark.parametrize(
    "setting",
    [
        {
            "mode": "meanvar",
            "distribution": "uniform",
            "p": 0.5,
            "components": [{"mean": 1.0, "var": 0.2}, {"mean": 900.0, "var_scale": 1.0}],
        },
        {
            "mode": "alphabeta",
            "distribution": "gamma",
            "components": [{"shape": 1.5, "rate": 0.01}],
        },
        {
            "mode": "meanvar",
            "distribution": "uniform",
            "p": 0.3,
            "variance_disturbance": 0.5,
            "components": [
                {"distribution": "gamma", "mean": 2.0, "var": 4.0},
                {"mean": 6.0, "var": 3.0},
            ],
        },
    ],
)
def test_record_in_model_units_is_the_distribution_of_sigma2_over_y_std2(setting):
    """sigma^2 / s^2 for labels divided by s: the rebuilt mixture's moments are the label-unit
    moments / s^2 and / s^4, each component's too; p and the disturbance stay."""
    spec, s = resolve(setting), 7.5
    record, scaled = spec.to_dict(), spec.in_model_units(s)
    families = {"uniform": Uniform, "gamma": Gamma}
    mixture = Mixture(
        tuple(families[c["distribution"]](**c["params"]) for c in scaled["components"]),
        scaled["p"],
    )
    original = spec.mixture
    assert mixture.mean == pytest.approx(original.mean / s**2, rel=1e-12)
    assert mixture.var == pytest.approx(original.var / s**4, rel=1e-12)
    assert scaled["mean"] == pytest.approx(mixture.mean, rel=1e-12)
    assert scaled["var"] == pytest.approx(mixture.var, rel=1e-12)
    for dist, item in zip(mixture.components, scaled["components"], strict=True):
        assert (dist.mean, dist.var) == pytest.approx((item["mean"], item["var"]), rel=1e-12)
    assert (scaled["p"], scaled["variance_disturbance"]) == (
        record["p"],
        record["variance_disturbance"],
    )
    assert "setting" not in scaled and json.loads(json.dumps(scaled)) == scaled
