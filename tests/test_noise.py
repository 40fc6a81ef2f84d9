"""Noise draws: moments, mixture fraction, conditional label-noise variance, disturbance, files."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from biv.config.distributions import Gamma, Uniform
from biv.config.errors import ConfigError
from biv.config.noise import NoiseSpec, resolve
from biv.noise import draws
from biv.noise.draws import NoiseDraw, generator, sample


def draw(y, setting: NoiseSpec, seed: int) -> NoiseDraw:
    """``biv.noise.draws.draw`` (numpy) with its arrays as tensors, for torch's checks."""
    y = y.numpy() if isinstance(y, torch.Tensor) else y
    return NoiseDraw(*(torch.from_numpy(a) for a in draws.draw(y, setting, seed)))


Z999 = 3.2905  # two-sided 99.9 % normal quantile

MOMENT_SETTINGS = {
    "boundaries": {"mode": "boundaries", "components": [{"a": 1, "b": 3}]},
    "boundaries_point_mass": {"mode": "boundaries", "components": [{"a": 2.5, "b": 2.5}]},
    "alphabeta_shape1": {"mode": "alphabeta", "components": [{"shape": 1, "rate": 0.5}]},
    "alphabeta_shape0.5": {"mode": "alphabeta", "components": [{"shape": 0.5, "rate": 2}]},
    "alphabeta_shape7.5": {"mode": "alphabeta", "components": [{"shape": 7.5, "rate": 3}]},
    "meanvar_uniform": {
        "mode": "meanvar",
        "distribution": "uniform",
        "components": [{"mean": 0.5, "var": 0.083}],
    },
    "meanvar_uniform_scale0.3": {
        "mode": "meanvar",
        "distribution": "uniform",
        "components": [{"mean": 3000, "var_scale": 0.3}],
    },
    "meanvar_uniform_vmax": {
        "mode": "meanvar",
        "distribution": "uniform",
        "components": [{"mean": 20000, "var_scale": 1}],
    },
    "meanvar_gamma": {
        "mode": "meanvar",
        "distribution": "gamma",
        "components": [{"mean": 2000, "var": 1e6}],
    },
    "meanvar_two_families": {
        "mode": "meanvar",
        "distribution": "gamma",
        "p": 0.3,
        "components": [{"mean": 1, "var": 2}, {"distribution": "uniform", "mean": 5, "var": 3}],
    },
    "meanvar_avg_uniform": {
        "mode": "meanvar_avg",
        "distribution": "uniform",
        "p": 0.5,
        "average_mean": 1000,
        "components": [{"mean": 0.5, "var": 0.083}, {"var": 0}],
    },
    "meanvar_avg_gamma_uniform": {
        "mode": "meanvar_avg",
        "p": 0.8,
        "average_mean": 100,
        "components": [
            {"distribution": "gamma", "mean": 10, "var": 50},
            {"distribution": "uniform", "var_scale": 1},
        ],
    },
}


def with_vd(spec: NoiseSpec, vd: float) -> NoiseSpec:
    """The same setting with variance disturbance ``vd``."""
    return resolve({**spec.setting, "variance_disturbance": vd})


def raw_moments(component: dict) -> list[float]:
    """E[X^k], k = 0..4, of one record component."""
    params = component["params"]
    if component["distribution"] == "gamma":
        shape, rate = params["shape"], params["rate"]
        return [math.prod(shape + i for i in range(k)) / rate**k for k in range(5)]
    a, b = params["a"], params["b"]
    if a == b:
        return [a**k for k in range(5)]
    return [(b ** (k + 1) - a ** (k + 1)) / ((k + 1) * (b - a)) for k in range(5)]


def central_moments(record: dict) -> tuple[float, float, float]:
    """Mixture mean, variance and fourth central moment from the components' raw moments."""
    weights = [record["p"], 1 - record["p"]]
    raw = [
        sum(w * raw_moments(c)[k] for w, c in zip(weights, record["components"], strict=False))
        for k in range(5)
    ]
    mu = raw[1]
    m4 = sum(math.comb(4, k) * raw[k] * (-mu) ** (4 - k) for k in range(5))
    return mu, raw[2] - mu**2, m4


@pytest.mark.parametrize("name", sorted(MOMENT_SETTINGS))
def test_variance_moments_match_the_record(name):
    """Sample mean and variance of sigma^2 within 1 % of the analytic values.

    The number of draws n (>= 10^6) is chosen so that 1 % is at least 4 standard errors of
    each estimator: SE(mean) = sd/sqrt(n), SE(sample variance) = sqrt((m4 - var^2)/n), with
    the fourth central moment m4 computed analytically (gamma shape 0.5 has kurtosis 15, so
    it needs 2.24e6 draws). The check is then seed-independent up to a 4-sigma event.
    """
    spec = resolve(MOMENT_SETTINGS[name])
    mean, var, m4 = central_moments(spec.to_dict())
    assert mean == pytest.approx(spec.mixture.mean, rel=1e-9)
    assert var == pytest.approx(spec.mixture.var, rel=1e-6, abs=1e-9)
    need = 0 if var == 0 else (4 / 0.01) ** 2 * max(var / mean**2, m4 / var**2 - 1)
    n = max(10**6, math.ceil(need))
    assert n <= 3 * 10**6  # keeps the test fast; pick settings accordingly
    variates = draw(torch.zeros(n), spec, seed=11).var
    if var == 0:
        assert torch.all(variates == mean)
        return
    assert 4 * math.sqrt(var / n) <= 0.01 * mean
    assert 4 * math.sqrt((m4 - var**2) / n) <= 0.01 * var
    assert variates.mean().item() == pytest.approx(mean, rel=0.01)
    assert variates.var().item() == pytest.approx(var, rel=0.01)


@pytest.mark.parametrize(("shape", "rate"), [(0.3, 1.0), (1.0, 2.0), (4.5, 0.01)])
def test_gamma_sampler_matches_the_cdf(shape, rate):
    """Empirical CDF vs the regularized incomplete gamma function, within 4 binomial SEs."""
    n = 200_000
    variates = torch.from_numpy(sample(Gamma(shape, rate), n, generator(5)))
    assert variates.dtype == torch.float64 and torch.all(variates >= 0)
    mean = shape / rate
    x = torch.tensor([0.01, 0.1, 0.5, 1.0, 2.0, 4.0], dtype=torch.float64) * mean
    cdf = torch.special.gammainc(torch.full_like(x, shape), rate * x)
    empirical = (variates[:, None] <= x).double().mean(0)
    bound = 4 * torch.sqrt(cdf * (1 - cdf) / n) + 1e-12
    assert torch.all((empirical - cdf).abs() <= bound)


def test_uniform_sampler_matches_the_cdf():
    n = 200_000
    variates = torch.from_numpy(sample(Uniform(2.0, 6.0), n, generator(5)))
    assert variates.dtype == torch.float64
    assert variates.min() >= 2 and variates.max() < 6
    x = torch.tensor([2.5, 3.0, 4.0, 5.5], dtype=torch.float64)
    cdf = (x - 2) / 4
    empirical = (variates[:, None] <= x).double().mean(0)
    assert torch.all((empirical - cdf).abs() <= 4 * torch.sqrt(cdf * (1 - cdf) / n))


def two_uniforms(p: float) -> NoiseSpec:
    return resolve(
        {"mode": "boundaries", "p": p, "components": [{"a": 0, "b": 1}, {"a": 10, "b": 12}]}
    )


@pytest.mark.parametrize("p", [0.05, 0.5, 0.9])
def test_mixture_fraction_within_binomial_interval(p):
    n = 10**6
    d = draw(torch.zeros(n), two_uniforms(p), seed=3)
    count = int((d.component == 0).sum())
    assert abs(count - n * p) <= Z999 * math.sqrt(n * p * (1 - p))
    # component ids match the supports of the two components
    assert torch.all(d.var[d.component == 0] < 1) and torch.all(d.var[d.component == 1] >= 10)


@pytest.mark.parametrize(("p", "component"), [(0.0, 1), (1.0, 0)])
def test_degenerate_mixture_fractions(p, component):
    d = draw(torch.zeros(1000), two_uniforms(p), seed=3)
    assert torch.all(d.component == component)


def test_label_noise_has_the_drawn_conditional_variance():
    """delta / sigma is N(0, 1) overall, per component and per sigma^2 quartile."""
    spec = resolve(MOMENT_SETTINGS["meanvar_two_families"])
    n = 400_000
    y = torch.linspace(-5, 5, n)
    d = draw(y, spec, seed=4)
    assert d.y_noisy.dtype == torch.float64 and d.var.dtype == torch.float64
    z = (d.y_noisy - y.double()) / d.var.sqrt()
    quartiles = torch.quantile(
        d.var[:100_000], torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64)
    )
    groups = [d.component == 0, d.component == 1]
    groups += [torch.bucketize(d.var, quartiles) == q for q in range(4)]
    for group in groups:
        zg = z[group]
        m = len(zg)
        assert m > 90_000
        assert abs(zg.mean().item()) <= 4 / math.sqrt(m)
        assert abs(zg.square().mean().item() - 1) <= 4 * math.sqrt(2 / m)
        assert abs(zg.pow(4).mean().item() - 3) <= 4 * math.sqrt(96 / m)  # Var(z^4) = 105 - 9


def test_point_mass_at_zero_gives_clean_labels():
    spec = resolve({"mode": "boundaries", "components": [{"a": 0, "b": 0}]})
    y = torch.randn(1000)
    d = draw(y, spec, seed=0)
    assert torch.equal(d.y_noisy, y.double()) and torch.all(d.var_seen == 0)


def test_without_disturbance_the_seen_variance_is_exact():
    spec = resolve(MOMENT_SETTINGS["meanvar_avg_gamma_uniform"])
    d = draw(torch.zeros(10_000), spec, seed=1)
    assert torch.equal(d.var_seen, d.var)


def test_disturbance_has_the_documented_conditional_spread():
    """eta / (sigma^2/3 * sqrt(vd)) is N(0, 1); with vd = 0.25, |sigma^2 + eta| never folds."""
    n = 10**6
    vd = 0.25
    spec = resolve({"mode": "boundaries", "components": [{"a": 1, "b": 30}]})
    d = draw(torch.zeros(n), with_vd(spec, vd), seed=2)
    z = (d.var_seen - d.var) / (d.var / 3 * math.sqrt(vd))
    assert abs(z.mean().item()) <= 4 / math.sqrt(n)
    assert abs(z.var().item() - 1) <= 4 * math.sqrt(2 / n)
    low = d.var < 5
    assert abs(z[low].var().item() - 1) <= 4 * math.sqrt(2 / int(low.sum()))


def test_disturbance_folds_with_absolute_value():
    """sigma^2 = 1, vd = 9: eta ~ N(0, 1) and the seen variance is |1 + eta| (folded normal)."""
    n = 10**6
    spec = resolve({"mode": "boundaries", "components": [{"a": 1, "b": 1}]})
    d = draw(torch.zeros(n), with_vd(spec, 9.0), seed=2)
    assert torch.all(d.var_seen >= 0)
    folded_mean = (
        1 - 2 * 0.5 * math.erfc(1 / math.sqrt(2)) + math.sqrt(2 / math.pi) * math.exp(-0.5)
    )
    folded_sd = math.sqrt(2 - folded_mean**2)
    assert abs(d.var_seen.mean().item() - folded_mean) <= 4 * folded_sd / math.sqrt(n)


def test_disturbance_changes_only_the_seen_variance():
    """Records that differ only in vd give the same noisy labels, variances and components."""
    spec = resolve({**MOMENT_SETTINGS["meanvar_gamma"], "variance_disturbance": 0.5})
    y = torch.zeros(10_000)
    base, disturbed = draw(y, with_vd(spec, 0.0), 9), draw(y, spec, 9)
    other = draw(y, with_vd(spec, 2.0), 9)
    for a, b in [(base, disturbed), (base, other)]:
        assert torch.equal(a.y_noisy, b.y_noisy) and torch.equal(a.var, b.var)
        assert torch.equal(a.component, b.component)
    assert torch.equal(base.var_seen, base.var)
    assert not torch.equal(disturbed.var_seen, disturbed.var)
    assert not torch.equal(disturbed.var_seen, other.var_seen)


def test_same_seed_same_draws_different_seed_different_draws():
    spec = resolve(MOMENT_SETTINGS["meanvar_avg_gamma_uniform"])
    y = torch.arange(5000.0)
    spec = with_vd(spec, 1.0)
    a, b, c = draw(y, spec, 7), draw(y, spec, 7), draw(y, spec, 8)
    for key in NoiseDraw._fields:
        assert torch.equal(getattr(a, key), getattr(b, key))
        if key != "component":
            assert torch.all(getattr(a, key) != getattr(c, key))  # continuous draws
    assert not torch.equal(a.component, c.component)
    stored = NoiseSpec.from_dict(json.loads(json.dumps(spec.to_dict())))  # read from a file
    assert all(torch.equal(x, z) for x, z in zip(draw(y, stored, 7), a, strict=True))


def test_spec_holds_the_mixture_and_round_trips_through_its_record():
    spec = resolve(MOMENT_SETTINGS["meanvar_avg_gamma_uniform"])
    mixture = spec.mixture
    assert mixture.p == 0.8 and len(mixture.components) == 2
    assert isinstance(mixture.components[0], Gamma) and isinstance(mixture.components[1], Uniform)
    assert mixture.mean == pytest.approx(100)  # the average mean
    assert (spec.mode, spec.variance_disturbance) == ("meanvar_avg", 0.0)
    record = spec.to_dict()
    assert (record["mean"], record["var"]) == (mixture.mean, mixture.var)
    assert NoiseSpec.from_dict(json.loads(json.dumps(record))) == spec
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.mixture = mixture


def _edited(change) -> dict:
    record = resolve(MOMENT_SETTINGS["meanvar_avg_gamma_uniform"]).to_dict()
    change(record)
    return record


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ([1], "a mapping with the key 'setting'"),
        ({"p": 1.0}, "a mapping with the key 'setting'"),
        (_edited(lambda r: r["components"][1]["params"].update(b=1.0)), "not the resolution"),
        (_edited(lambda r: r.update(mean=1.0)), "not the resolution"),
        (_edited(lambda r: r.update(variance_disturbance=0.5)), "not the resolution"),
        (_edited(lambda r: r.update(extra=1)), "not the resolution"),
        (_edited(lambda r: r["setting"].update(p=0.5)), "not the resolution"),
    ],
)
def test_bad_records(record, message):
    with pytest.raises(ValueError) as err:
        NoiseSpec.from_dict(record)
    assert message in str(err.value)


def test_a_record_with_an_impossible_setting_names_the_key():
    record = _edited(lambda r: r["setting"].update(variance_disturbance=-0.5))
    with pytest.raises(ConfigError) as err:
        NoiseSpec.from_dict(record)
    assert err.value.key == "variance_disturbance" and "-0.5 is not allowed" in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"y": torch.zeros(3, 1)}, "y must be a 1-D floating-point array"),
        ({"y": torch.arange(3)}, "y must be a 1-D floating-point array"),
        ({"seed": -1}, "seed=-1 not allowed: must be an int in [0, 2**64)"),
        ({"seed": 1.0}, "seed=1.0 not allowed"),
        ({"seed": True}, "seed=True not allowed"),
    ],
)
def test_bad_draw_arguments(kwargs, message):
    args = {"y": torch.zeros(3), "setting": two_uniforms(0.5), "seed": 0, **kwargs}
    with pytest.raises(ValueError) as err:
        draw(**args)
    assert message in str(err.value)
