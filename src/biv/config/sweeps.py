"""Sweeps expanded by value: one experiment per grid point, named from its values, every
error keyed by the sweep value as written (``sweeps.<name>.vary.<path>[<index>]``)."""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from biv.config import dataset as datasets_spec
from biv.config.errors import ConfigError, fail
from biv.config.experiment import DatasetSpec, Experiment, check_seeds
from biv.config.loss import LossSpec
from biv.config.model import ModelSpec
from biv.config.naming import canonical, normal
from biv.config.noise import NoiseSpec
from biv.config.training import TrainingSpec

if TYPE_CHECKING:
    from biv.config.plan import Builder

SWEEPABLE = ("training", "losses", "noise", "dataset", "model")


@dataclass(frozen=True)
class SweepPoint:
    experiment: str
    values: dict  # dotted path -> value, as written in the config (its value in one form)


@dataclass(frozen=True)
class Sweep:
    """A sweep of an experiment: one derived experiment per point of the grid of ``vary``."""

    name: str
    title: str
    experiment: str
    losses: tuple[str, ...]
    vary: dict
    points: tuple[SweepPoint, ...]
    loss_types: dict  # loss name -> its type (mse, biv, ...), for the figure's colours

    def to_dict(self) -> dict:
        """Plain data whose repr is stable (a rule param): the values of ``vary`` and of the
        points in one form (:func:`biv.config.naming.normal`)."""
        return asdict(self) | {
            "losses": list(self.losses),
            "points": [asdict(p) for p in self.points],
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> Sweep:
        """The Sweep of :meth:`to_dict`'s output, trusted as it is: nothing is checked again."""
        points = tuple(SweepPoint(**p) for p in data["points"])
        return cls(**{**data, "losses": tuple(data["losses"]), "points": points})


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
        written = {p: value for p, (_, value) in where.items()}
        exp_name = b.registry.name(name, written, written)
        assignment = {p: normal(value) for p, value in written.items()}
        point = _Point(key, base_name, where)
        exp, new_noise, new_datasets = _point(b, point, base, losses, seeds)
        for registry, new in ((b.noise, new_noise), (b.datasets, new_datasets)):
            for derived, spec in new.items():
                registry.setdefault(derived, spec)
        b.check_fit(exp, point.fit_keys())
        exp = replace(exp, name=exp_name, sweep=name, sweep_values=assignment)
        experiments_out[exp_name] = exp
        points.append(SweepPoint(exp_name, assignment))
    title = sweep.get("title") or name
    types = {loss: base.losses[loss].type for loss in losses}
    grid = {path: normal(values) for path, values in vary.items()}
    result = Sweep(name, title, base_name, tuple(losses), grid, tuple(points), types)
    return result, experiments_out


@dataclass(frozen=True)
class _Point:
    """One point of a sweep (``key``: ``sweeps.<name>``) on experiment ``base_name``: its values
    (``where``: dotted path -> (index, value)) applied to config blocks, and errors keyed by
    the sweep value they come from."""

    key: str
    base_name: str
    where: dict[str, tuple[int, Any]]

    def section(self, name: str) -> dict[str, tuple[int, Any]]:
        """The values of one section (``training``, ``losses``, ...), by path within it."""
        out = {}
        for path, item in self.where.items():
            section, rest = path.split(".", 1)
            if section == name:
                out[rest] = item
        return out

    def applied(self, cfg: Any, section: str, own: dict) -> Any:
        """A copy of the config block ``cfg`` with the values ``own`` put in."""
        target = copy.deepcopy(cfg)
        for rest, (_, value) in own.items():
            vkey = f"{self.key}.vary.{_join(section, rest)}"
            target = _assign(vkey, section, self.base_name, target, rest, copy.deepcopy(value))
        return target

    def parsed(self, parse, prefix: str, section: str, own: dict, cfg: Any) -> Any:
        """``parse(prefix, cfg)``, its errors keyed by the sweep value they come from
        (``prefix``: where the block is in the config, e.g. ``noise.bike-gamma``; ``section``:
        how the sweep path starts)."""
        try:
            return parse(prefix, cfg)
        except ConfigError as err:
            for rest, (i, _) in own.items():
                full = _join(prefix, _brackets(rest))
                if err.key == full or err.key.startswith((f"{full}.", f"{full}[")):
                    user_key = f"{self.key}.vary.{_join(section, rest)}[{i}]"
                    raise err.rekeyed(user_key + err.key[len(full) :]) from None
            shown = ", ".join(f"{p}={v!r}" for p, (_, v) in self.where.items())
            raise ConfigError(
                err.key, f"{err.problem} (at the point {shown} of {self.key})"
            ) from None

    def fit_keys(self) -> dict[str, str]:
        """The keys ``Builder.check_fit`` names for a batch size or a model that does not fit."""
        batch = (
            "training.batch_size",
            "training.drop_last",
            "dataset.n_train",
            "dataset.train_size",
        )
        model = tuple(p for p in self.where if p.startswith(("model.", "dataset.")))
        eval_batch = ("training.eval_batch_size", "training.eval_protocol", "dataset.n_test")
        eval_batch += ("dataset.test_size",)
        training = f"experiments.{self.base_name}.training"
        return {
            "batch": self._fit_key(batch, f"{training}.batch_size"),
            "model": self._fit_key(model, f"experiments.{self.base_name}.model"),
            "eval_batch": self._fit_key(eval_batch, f"{training}.eval_batch_size"),
        }

    def _fit_key(self, paths: tuple[str, ...], default: str) -> str:
        for path in paths:
            if path in self.where:
                return f"{self.key}.vary.{path}[{self.where[path][0]}]"
        return default


def _training(b: Builder, p: _Point, base: Experiment) -> TrainingSpec:
    own = p.section("training")
    if not own:
        return base.training
    user = b.block("experiments")[p.base_name].get("training") or {}
    cfg = p.applied(user, "training", own)
    prefix = f"experiments.{p.base_name}.training"
    return p.parsed(TrainingSpec.from_config, prefix, "training", own, cfg)


def _losses(b: Builder, p: _Point, base: Experiment, losses: list[str]) -> dict[str, LossSpec]:
    values, specs = p.section("losses"), {}
    for loss in losses:
        own = {
            rest.split(".", 1)[1] if "." in rest else "": item
            for rest, item in values.items()
            if rest.split(".", 1)[0] == loss
        }
        if not own:
            specs[loss] = base.losses[loss]
            continue
        prefix = f"losses.{loss}"
        cfg = p.applied(b.block("losses")[loss], prefix, own)
        specs[loss] = p.parsed(LossSpec.from_config, prefix, prefix, own, cfg)
    return specs


def _noise(b: Builder, p: _Point, base: Experiment) -> tuple[str | None, NoiseSpec | None]:
    """The point's noise setting: its name, and its spec if the point derives a new one."""
    own = p.section("noise")
    if not own:
        return base.noise, None
    setting = p.applied(b.block("noise")[base.noise], "noise", own)
    derived = b.registry.name(base.noise, _values(own), setting)
    spec = b.noise.get(derived) or p.parsed(
        lambda prefix, cfg: b.resolve_noise(derived, cfg, prefix),
        f"noise.{base.noise}",
        "noise",
        own,
        setting,
    )
    return derived, spec


def _dataset(b: Builder, p: _Point, base: Experiment) -> tuple[str, DatasetSpec | None]:
    """The point's dataset: its name, and its spec if the point derives a new one."""
    own = p.section("dataset")
    if not own:
        return base.dataset, None
    prefix = f"datasets.{base.dataset}"
    cfg = p.applied(b.block("datasets")[base.dataset], "dataset", own)
    spec = p.parsed(
        lambda prefix, cfg: datasets_spec.parse(base.dataset, cfg, prefix),
        prefix,
        "dataset",
        own,
        cfg,
    )
    # named from the checked entry, as a split of split_seed: run is (Builder.split)
    derived = b.registry.name(base.dataset, _values(own), spec.to_dict())
    return derived, b.datasets.get(derived) or DatasetSpec(derived, spec)


def _model(b: Builder, p: _Point, base: Experiment) -> ModelSpec:
    own = p.section("model")
    if not own:
        return base.model
    name = b.block("experiments")[p.base_name]["model"]
    cfg = p.applied(b.block("models")[name], "model", own)
    return p.parsed(ModelSpec.from_config, f"models.{name}", "model", own, cfg)


def _point(
    b: Builder, p: _Point, base: Experiment, losses: list[str], seeds: tuple[int, ...]
) -> tuple[Experiment, dict[str, NoiseSpec], dict[str, DatasetSpec]]:
    """The base experiment with the point's values applied and checked, and the noise settings
    and datasets it derives (for the caller to add to the plan)."""
    noise, noise_spec = _noise(b, p, base)
    dataset, dataset_spec = _dataset(b, p, base)
    exp = Experiment(
        base.name,
        dataset,
        _model(b, p, base),
        noise,
        _losses(b, p, base, losses),
        seeds,
        _training(b, p, base),
        base.baseline if base.baseline in losses else None,
    )
    new_noise = {noise: noise_spec} if noise_spec is not None else {}
    new_datasets = {dataset: dataset_spec} if dataset_spec is not None else {}
    return exp, new_noise, new_datasets


def _values(own: dict[str, tuple[int, Any]]) -> dict[str, Any]:
    return {rest: value for rest, (_, value) in own.items()}


def _join(prefix: str, rest: str) -> str:
    return f"{prefix}.{rest}" if rest else prefix


def _brackets(dotted: str) -> str:
    """components.0.mean -> components[0].mean (how errors write list items)."""
    return re.sub(r"\.(\d+)(?=\.|$)", r"[\1]", dotted).lstrip(".")


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


def improvement_reference(
    losses: Sequence[str], vary: Mapping[str, Any], baseline: str | None
) -> str | None:
    """Which runs a sweep point's improvement over L2 is measured against, for a sweep of
    ``losses`` varying the dotted paths of ``vary`` on a base experiment whose baseline loss
    is ``baseline``: ``"sweep"`` (the baseline is one of the sweep's losses: the same point's
    runs of it), ``"base"`` (it is not, but only other losses are varied: the base
    experiment's runs of it, on the same noise draws), or None (nothing to compare with)."""
    if baseline is None:
        return None
    if baseline in losses:
        return "sweep"
    if all(p.startswith("losses.") and p.split(".")[1] != baseline for p in vary):
        return "base"
    return None
