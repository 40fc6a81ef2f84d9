"""Sweeps expanded by value: one experiment per grid point, named from its values, every
error keyed by the sweep value as written (``sweeps.<name>.vary.<path>[<index>]``)."""

from __future__ import annotations

import copy
import itertools
import re
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from biv.spec import dataset as datasets_spec
from biv.spec.errors import ConfigError, fail
from biv.spec.experiment import DatasetSpec, Experiment, check_seeds
from biv.spec.loss import LossSpec
from biv.spec.model import ModelSpec
from biv.spec.naming import canonical
from biv.spec.training import TrainingSpec

if TYPE_CHECKING:
    from biv.spec.plan import Builder

SWEEPABLE = ("training", "losses", "noise", "dataset", "model")


@dataclass(frozen=True)
class SweepPoint:
    experiment: str
    values: dict  # dotted path -> value, as written in the config


@dataclass(frozen=True)
class Sweep:
    name: str
    title: str
    experiment: str
    losses: tuple[str, ...]
    vary: dict
    points: tuple[SweepPoint, ...]

    def as_dict(self) -> dict:
        return asdict(self) | {
            "losses": list(self.losses),
            "points": [asdict(p) for p in self.points],
        }


def expand_sweep(b: Builder, name: str, sweep: dict, experiments: dict) -> tuple[Sweep, dict]:
    """One experiment per point of the grid of ``sweep["vary"]``, named from its values."""
    key = f"sweeps.{name}"
    base_name = b.ref(f"{key}.experiment", "experiments", sweep.get("experiment"))
    base = experiments[base_name]
    losses = sweep.get("losses") or list(base.losses)
    for i, loss in enumerate(losses):
        if loss not in base.losses:
            raise ConfigError(
                f"{key}.losses[{i}]", f"{loss!r} is not a loss of experiment {base_name!r}"
            )
    seeds = check_seeds(f"{key}.seeds", sweep["seeds"]) if "seeds" in sweep else base.seeds
    vary = sweep.get("vary")
    if not isinstance(vary, dict) or not vary:
        raise fail(f"{key}.vary", vary, "a mapping of dotted paths to lists of values")
    for path, values in vary.items():
        _check_sweep_path(f"{key}.vary.{path}", path, losses, base)
        if not isinstance(values, list) or not values:
            raise fail(f"{key}.vary.{path}", values, "a non-empty list of values")
        seen: dict[str, int] = {}
        for i, value in enumerate(values):
            j = seen.setdefault(canonical(value), i)
            if j != i:
                raise ConfigError(
                    f"{key}.vary.{path}[{i}]",
                    f"{value!r} repeats [{j}]; every point of a sweep must differ",
                )
    experiments_out = {}
    points = []
    paths = list(vary)
    for indices in itertools.product(*(range(len(vary[p])) for p in paths)):
        where = {p: (i, vary[p][i]) for p, i in zip(paths, indices, strict=True)}
        assignment = {p: value for p, (_, value) in where.items()}
        exp_name = b.registry.name(name, assignment, assignment)
        exp = _point(b, key, base_name, base, losses, seeds, where)
        exp = replace(exp, name=exp_name, sweep=name, sweep_values=assignment)
        experiments_out[exp_name] = exp
        points.append(SweepPoint(exp_name, assignment))
    title = sweep.get("title") or name
    result = Sweep(name, title, base_name, tuple(losses), copy.deepcopy(vary), tuple(points))
    return result, experiments_out


def _point(
    b: Builder,
    key: str,
    base_name: str,
    base: Experiment,
    losses: list[str],
    seeds: tuple[int, ...],
    where: dict[str, tuple[int, Any]],
) -> Experiment:
    """The base experiment with one point's values applied and checked."""
    user = b.block("experiments")[base_name]
    sections: dict[str, dict[str, tuple[int, Any]]] = {}
    for path, item in where.items():
        section, rest = path.split(".", 1)
        sections.setdefault(section, {})[rest] = item

    def rekey(err: ConfigError, prefix: str, section: str, own: dict) -> ConfigError:
        """The error keyed by the sweep value it comes from (``prefix``: where the values go in
        the config, e.g. ``noise.bike-gamma``; ``section``: how the sweep path starts)."""
        for rest, (i, _) in own.items():
            full = _join(prefix, _brackets(rest))
            if err.key == full or err.key.startswith((f"{full}.", f"{full}[")):
                user_key = f"{key}.vary.{_join(section, rest)}[{i}]"
                return err.rekeyed(user_key + err.key[len(full) :])
        shown = ", ".join(f"{p}={v!r}" for p, (_, v) in where.items())
        return ConfigError(err.key, f"{err.problem} (at the point {shown} of {key})")

    def applied(target: Any, section: str, own: dict) -> Any:
        target = copy.deepcopy(target)
        for rest, (_, value) in own.items():
            vkey = f"{key}.vary.{_join(section, rest)}"
            target = _assign(vkey, section, base_name, target, rest, copy.deepcopy(value))
        return target

    training = base.training
    if "training" in sections:
        prefix = f"experiments.{base_name}.training"
        cfg = applied(user.get("training") or {}, "training", sections["training"])
        try:
            training = TrainingSpec.from_config(prefix, cfg)
        except ConfigError as err:
            raise rekey(err, prefix, "training", sections["training"]) from None
    loss_specs = {}
    for loss in losses:
        own = {
            rest.split(".", 1)[1] if "." in rest else "": item
            for rest, item in sections.get("losses", {}).items()
            if rest.split(".", 1)[0] == loss
        }
        if not own:
            loss_specs[loss] = base.losses[loss]
            continue
        prefix = f"losses.{loss}"
        cfg = applied(b.block("losses")[loss], prefix, own)
        try:
            loss_specs[loss] = LossSpec.from_config(prefix, cfg)
        except ConfigError as err:
            raise rekey(err, prefix, prefix, own) from None
    noise = base.noise
    if "noise" in sections:
        setting = applied(b.block("noise")[noise], "noise", sections["noise"])
        derived = b.registry.name(noise, _values(sections["noise"]), setting)
        try:
            b.noise.setdefault(derived, b.resolve_noise(derived, setting, f"noise.{noise}"))
        except ConfigError as err:
            raise rekey(err, f"noise.{noise}", "noise", sections["noise"]) from None
        noise = derived
    dataset = base.dataset
    if "dataset" in sections:
        prefix = f"datasets.{dataset}"
        cfg = applied(b.block("datasets")[dataset], "dataset", sections["dataset"])
        derived = b.registry.name(dataset, _values(sections["dataset"]), cfg)
        try:
            spec = datasets_spec.validate(dataset, cfg, prefix)
        except ConfigError as err:
            raise rekey(err, prefix, "dataset", sections["dataset"]) from None
        b.datasets.setdefault(derived, DatasetSpec(derived, spec))
        dataset = derived
    model = base.model
    if "model" in sections:
        prefix = f"models.{user['model']}"
        cfg = applied(b.block("models")[user["model"]], "model", sections["model"])
        try:
            model = ModelSpec.from_config(prefix, cfg)
        except ConfigError as err:
            raise rekey(err, prefix, "model", sections["model"]) from None
    baseline = base.baseline if base.baseline in losses else None
    exp = Experiment(base_name, dataset, model, noise, loss_specs, seeds, training, baseline)
    keys = {
        "batch": _fit_key(
            key,
            where,
            (
                "training.batch_size",
                "training.drop_last",
                "dataset.n_train",
                "dataset.train_size",
            ),
            f"experiments.{base_name}.training.batch_size",
        ),
        "model": _fit_key(
            key,
            where,
            tuple(p for p in where if p.startswith(("model.", "dataset."))),
            f"experiments.{base_name}.model",
        ),
        "eval_batch": _fit_key(
            key,
            where,
            (
                "training.eval_batch_size",
                "training.eval_protocol",
                "dataset.n_test",
                "dataset.test_size",
            ),
            f"experiments.{base_name}.training.eval_batch_size",
        ),
    }
    b.check_fit(exp, keys)
    return exp


def _values(own: dict[str, tuple[int, Any]]) -> dict[str, Any]:
    return {rest: value for rest, (_, value) in own.items()}


def _join(prefix: str, rest: str) -> str:
    return f"{prefix}.{rest}" if rest else prefix


def _brackets(dotted: str) -> str:
    """components.0.mean -> components[0].mean (how errors write list items)."""
    return re.sub(r"\.(\d+)(?=\.|$)", r"[\1]", dotted).lstrip(".")


def _fit_key(key: str, where: dict, paths: tuple[str, ...], default: str) -> str:
    for path in paths:
        if path in where:
            return f"{key}.vary.{path}[{where[path][0]}]"
    return default


def _check_sweep_path(key: str, path: str, losses: list[str], base: Experiment) -> None:
    section = path.split(".", 1)[0]
    if section not in SWEEPABLE or "." not in path:
        raise ConfigError(
            key,
            f"{path!r} is not a sweepable path; it starts with one of {', '.join(SWEEPABLE)} "
            "followed by '.' and a key (e.g. training.batch_size, losses.biv.epsilon, "
            "noise.average_mean, noise.components.0.mean, dataset.train_size)",
        )
    if section == "losses" and path.split(".")[1] not in losses:
        raise ConfigError(key, f"names loss {path.split('.')[1]!r}, not a loss of the sweep")
    if section == "noise" and base.noise is None:
        raise ConfigError(key, f"experiment {base.name!r} has no noise to vary")


def _assign(key: str, section: str, base: str, target: Any, rest: str, value: Any) -> Any:
    """``target`` with ``value`` put at the dotted path ``rest`` (lists by index; an empty path
    replaces the whole target)."""
    if not rest:
        return value
    parts = rest.split(".")
    node = target
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(key, f"{part!r} is not an index of a list of {len(node)}")
            index: Any = int(part)
        elif isinstance(node, dict):
            if not last and part not in node:
                walked = _join(section, ".".join(parts[: depth + 1]))
                raise ConfigError(key, f"{walked!r} does not exist in experiment {base!r}")
            index = part
        else:
            raise ConfigError(key, f"cannot set {part!r} inside {node!r}")
        if last:
            node[index] = value
        else:
            node = node[index]
    return target
