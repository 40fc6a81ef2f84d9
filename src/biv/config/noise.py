"""A noise setting (``noise.<name>`` of the config) resolved into the distributions it describes.

Torch-free arithmetic; errors are ConfigErrors keyed relative to the setting (e.g.
``components[0].var``). The keys are documented in config/README.md.
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass

from biv import atomic
from biv.config import values
from biv.config.distributions import Gamma, Mixture, Uniform
from biv.config.errors import ConfigError, not_allowed

MODES = ("boundaries", "alphabeta", "meanvar", "meanvar_avg")
DISTRIBUTIONS = ("uniform", "gamma")
_MODE_FAMILY = {"boundaries": "uniform", "alphabeta": "gamma"}
_COMPONENT_KEYS = {
    "boundaries": ("a", "b", "distribution"),
    "alphabeta": ("shape", "rate", "distribution"),
    "meanvar": ("mean", "var", "var_scale", "distribution"),
    "meanvar_avg": ("mean", "var", "var_scale", "distribution"),
}
_SETTING_KEYS = ("mode", "distribution", "components", "p", "variance_disturbance")
_MISSING = object()


def _number(d: dict, key: str, where: str, default: object = _MISSING) -> float:
    value = d.get(key, default)
    if value is _MISSING:
        raise ConfigError(where, "missing: required (a finite number)")
    return values.number(where, value)


def _family(value: object, where: str, mode: str) -> str:
    if value not in DISTRIBUTIONS:
        raise not_allowed(where, value, f"one of {', '.join(DISTRIBUTIONS)}")
    if mode in _MODE_FAMILY and value != _MODE_FAMILY[mode]:
        raise not_allowed(
            where, value, f"mode {mode!r} describes {_MODE_FAMILY[mode]} components only"
        )
    return value


def _uniform_meanvar(comp: dict, where: str, mean: float) -> Uniform:
    if mean < 0:
        raise not_allowed(f"{where}.mean", mean, "a uniform needs mean >= 0")
    vmax = mean**2 / 3
    if "var_scale" in comp:
        s = _number(comp, "var_scale", f"{where}.var_scale")
        if not 0 < s <= 1:
            raise not_allowed(
                f"{where}.var_scale", s, "need 0 < var_scale <= 1 (var = var_scale*mean**2/3)"
            )
        half = mean * math.sqrt(s)
    else:
        v = _number(comp, "var", f"{where}.var")
        if not 0 <= v <= vmax:
            raise not_allowed(
                f"{where}.var",
                v,
                f"a uniform with mean {mean!r} needs 0 <= var <= mean**2/3 = {vmax:.6g} "
                "(so that a = mean - sqrt(3*var) >= 0)",
            )
        half = math.sqrt(3 * v)
    return Uniform(max(mean - half, 0.0), mean + half)


def _gamma_meanvar(comp: dict, where: str, mean: float) -> Gamma:
    if "var_scale" in comp:
        raise not_allowed(f"{where}.var_scale", comp["var_scale"], "var_scale is for uniform only")
    if mean <= 0:
        raise not_allowed(f"{where}.mean", mean, "a gamma needs mean > 0")
    v = _number(comp, "var", f"{where}.var")
    if v <= 0:
        raise not_allowed(f"{where}.var", v, "a gamma needs var > 0")
    return Gamma(mean**2 / v, mean / v)


def _component(
    comp: object, where: str, mode: str, default_family: str | None, derived_mean: float | None
) -> Uniform | Gamma:
    if not isinstance(comp, dict):
        raise not_allowed(where, comp, "each component must be a dict")
    values.check_keys(where, comp, _COMPONENT_KEYS[mode])
    if "distribution" in comp:
        family = _family(comp["distribution"], f"{where}.distribution", mode)
    elif default_family is None:
        raise ConfigError(
            f"{where}.distribution",
            f"missing: this or the setting's distribution is required with mode {mode!r}: "
            f"one of {', '.join(DISTRIBUTIONS)}",
        )
    else:
        family = default_family
    if mode == "boundaries":
        a, b = _number(comp, "a", f"{where}.a"), _number(comp, "b", f"{where}.b")
        if a < 0:
            raise not_allowed(f"{where}.a", a, "need a >= 0")
        if b < a:
            raise not_allowed(f"{where}.b", b, f"need b >= a = {a!r}")
        return Uniform(a, b)
    if mode == "alphabeta":
        shape = _number(comp, "shape", f"{where}.shape")
        rate = _number(comp, "rate", f"{where}.rate")
        if shape <= 0:
            raise not_allowed(f"{where}.shape", shape, "need shape > 0")
        if rate <= 0:
            raise not_allowed(f"{where}.rate", rate, "need rate > 0")
        return Gamma(shape, rate)
    if ("var" in comp) == ("var_scale" in comp):
        got = "both" if "var" in comp else "neither"
        raise ConfigError(where, f"needs exactly one of 'var' and 'var_scale' (got {got})")
    if derived_mean is None:
        mean = _number(comp, "mean", f"{where}.mean")
    else:
        mean = derived_mean
        if "mean" in comp and not math.isclose(
            _number(comp, "mean", f"{where}.mean"), mean, rel_tol=1e-9
        ):
            raise not_allowed(
                f"{where}.mean",
                comp["mean"],
                f"meanvar_avg derives it from average_mean as {mean!r}; omit it",
            )
    return (_uniform_meanvar if family == "uniform" else _gamma_meanvar)(comp, where, mean)


def _probability(setting: dict, n_components: int, mode: str) -> float:
    if n_components == 1:
        p = _number(setting, "p", "p", default=1.0)
        if p != 1:
            raise not_allowed("p", p, "p must be 1 with one component")
        return p
    if "p" not in setting:
        raise ConfigError(
            "p", "missing: required with 2 components (probability of component 1, 0 <= p <= 1)"
        )
    p = _number(setting, "p", "p")
    if mode == "meanvar_avg" and not 0 <= p < 1:
        raise not_allowed("p", p, "meanvar_avg needs 0 <= p < 1 (mean2 = (X - p*mean1)/(1 - p))")
    if not 0 <= p <= 1:
        raise not_allowed("p", p, "need 0 <= p <= 1")
    return p


def _derived_mean(setting: dict, mean1: float, p: float) -> float:
    x = _number(setting, "average_mean", "average_mean")
    mean2 = (x - p * mean1) / (1 - p)
    if mean2 <= 0:
        raise not_allowed(
            "average_mean",
            x,
            f"it gives components[1].mean = (average_mean - p*mean1)/(1 - p) = {mean2:.6g} <= 0; "
            f"need average_mean > p*components[0].mean = {p * mean1:.6g}",
        )
    return mean2


@dataclass(frozen=True)
class NoiseSpec:
    """A noise setting resolved: the mixture of sigma^2 (raw label units^2) it describes.

    ``setting`` is the setting the user wrote (sweep values applied) in one form
    (:func:`canonical_setting`): an edit that changes nothing changes no rule param.
    """

    mode: str
    mixture: Mixture
    variance_disturbance: float
    setting: dict

    def to_dict(self) -> dict:
        """The JSON record (rule params, ``label_units`` of params.json, the draws' meta):
        {"mode", "p", "variance_disturbance", "mean", "var" (of the mixture),
        "components": [{"distribution", "params", "mean", "var"}, ...], "setting"}."""
        m = self.mixture
        return {
            "mode": self.mode,
            "p": m.p,
            "variance_disturbance": self.variance_disturbance,
            "mean": m.mean,
            "var": m.var,
            "components": [
                {"distribution": c.distribution, "params": c.params(), "mean": c.mean, "var": c.var}
                for c in m.components
            ],
            "setting": copy.deepcopy(self.setting),
        }

    @classmethod
    def from_dict(cls, record: object) -> NoiseSpec:
        """The spec of a record written by :meth:`to_dict`: its setting resolved again, the rest
        of the record checked equal to that resolution (ValueError if edited or stale)."""
        setting = record.get("setting") if isinstance(record, dict) else None
        if not isinstance(setting, dict):
            raise ValueError(
                f"noise record {record!r:.80} is not allowed; expected a mapping with the key "
                "'setting'"
            )
        spec = resolve(setting)
        if spec.to_dict() != record:
            raise ValueError(
                f"noise record {record!r:.80} is not the resolution of its setting (edited, or "
                "written by another version?); delete it to have it written again"
            )
        return spec

    def in_model_units(self, y_std: float) -> dict:
        """The record for labels divided by ``y_std`` (the model's units when
        ``training.normalize``): every sigma^2 divided by y_std^2, so uniform bounds and means
        by y_std^2, variances by y_std^4, gamma rates multiplied by y_std^2; p and the variance
        disturbance (a relative factor) unchanged. The user's ``setting`` is left out."""
        s2 = y_std**2

        def params(component: dict) -> dict:
            if component["distribution"] == "gamma":
                return {**component["params"], "rate": component["params"]["rate"] * s2}
            return {k: v / s2 for k, v in component["params"].items()}

        record = self.to_dict()
        return {
            "mode": record["mode"],
            "p": record["p"],
            "variance_disturbance": record["variance_disturbance"],
            "mean": record["mean"] / s2,
            "var": record["var"] / s2**2,
            "components": [
                {**c, "params": params(c), "mean": c["mean"] / s2, "var": c["var"] / s2**2}
                for c in record["components"]
            ],
        }


def resolve(setting: dict) -> NoiseSpec:
    """Validate ``setting`` (a ``noise.<name>`` mapping) and return the spec it describes."""
    if not isinstance(setting, dict):
        raise not_allowed("", setting, "a noise setting is a mapping")
    mode = setting.get("mode", _MISSING)
    if mode not in MODES:
        shown = "missing" if mode is _MISSING else repr(mode)
        raise ConfigError("mode", f"{shown} is not allowed; expected one of {', '.join(MODES)}")
    allowed = (*_SETTING_KEYS, "average_mean") if mode == "meanvar_avg" else _SETTING_KEYS
    values.check_keys("", setting, allowed)
    default_family = _MODE_FAMILY.get(mode)
    if "distribution" in setting:
        default_family = _family(setting["distribution"], "distribution", mode)
    components = setting.get("components")
    if not isinstance(components, list | tuple) or len(components) not in (1, 2):
        raise not_allowed("components", components, "a list of 1 or 2 component dicts")
    if mode == "meanvar_avg" and len(components) != 2:
        raise not_allowed("components", components, "meanvar_avg needs 2 components")
    p = _probability(setting, len(components), mode)
    vd = _number(setting, "variance_disturbance", "variance_disturbance", default=0.0)
    if vd < 0:
        raise not_allowed("variance_disturbance", vd, "need variance_disturbance >= 0")
    dists = []
    for i, comp in enumerate(components):
        derived = None
        if mode == "meanvar_avg" and i == 1:  # component 0 is validated by now
            derived = _derived_mean(setting, float(components[0]["mean"]), p)
        dists.append(_component(comp, f"components[{i}]", mode, default_family, derived))
    return NoiseSpec(mode, Mixture(tuple(dists), p), vd, canonical_setting(setting))


#: The keys of a checked setting and of its components, in the one order they are recorded in.
_SETTING_ORDER = ("mode", "distribution", "components", "p", "average_mean", "variance_disturbance")
_COMPONENT_ORDER = ("distribution", "a", "b", "shape", "rate", "mean", "var", "var_scale")


def canonical_setting(setting: dict) -> dict:
    """A checked setting in one form, whatever the order of its keys and however its numbers
    are written (``2`` or ``2.0``): its keys in a fixed order, its numbers as floats."""

    def ordered(mapping: dict, order: tuple[str, ...]) -> dict:
        return {key: _plain(mapping[key]) for key in order if key in mapping}

    out = ordered(setting, _SETTING_ORDER)
    out["components"] = [ordered(c, _COMPONENT_ORDER) for c in setting["components"]]
    return out


def _plain(value: object) -> object:
    return float(value) if values.is_number(value) else value


def write_setting_file(path: str | os.PathLike, spec: NoiseSpec, **extra: object) -> None:
    """Write the file a run draws its noisy labels from (estimate_noise's params.json): ``extra``
    keys beside ``label_units``, the record of ``spec``."""
    atomic.write_json(path, {**extra, "label_units": spec.to_dict()})


def read_setting_file(path: str | os.PathLike) -> tuple[NoiseSpec, dict]:
    """The spec and ``label_units`` record of a file written by :func:`write_setting_file`
    (ValueError, KeyError or TypeError when it is not one)."""
    record = atomic.read_json(path)["label_units"]
    return NoiseSpec.from_dict(record), record
