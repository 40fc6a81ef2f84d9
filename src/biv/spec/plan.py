"""The plan: a config checked once and every sweep expanded by value into experiments and runs.

Every error is a ConfigError naming the key as the user wrote it, sweep values included
(``sweeps.<name>.vary.<path>[<index>]``). Nothing here imports torch.
"""

from __future__ import annotations

import copy
import itertools
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from biv.spec import dataset as datasets_spec
from biv.spec import noise as noise_spec
from biv.spec.errors import ConfigError, fail
from biv.spec.loss import LossSpec
from biv.spec.model import ModelSpec, check_input
from biv.spec.naming import SWEEP_SEP, Registry, canonical
from biv.spec.training import TrainingSpec

SAFE_NAME = re.compile(r"^[A-Za-z0-9]+([_-][A-Za-z0-9]+)*$")
BLOCKS = {
    "datasets": "dataset",
    "noise": "noise setting",
    "models": "model",
    "losses": "loss",
    "experiments": "experiment",
    "sweeps": "sweep",
    "figures": "figure",
}
SWEEPABLE = ("training", "losses", "noise", "dataset", "model")
UTKFACE_NATIVE_SIZE = 200


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    config: dict  # validated, defaults filled (biv.spec.dataset.validate)

    @property
    def images(self) -> bool:
        return self.config["kind"] == "utkface"

    @property
    def n_train(self) -> int:
        return datasets_spec.train_size(self.config)


@dataclass(frozen=True)
class NoiseSpec:
    name: str
    setting: dict  # as the user wrote it (sweep values applied)
    record: dict  # the resolved distributions (biv.spec.noise.resolve)


@dataclass(frozen=True)
class Experiment:
    name: str
    dataset: str
    model: ModelSpec
    noise: str | None
    losses: dict[str, LossSpec]
    seeds: tuple[int, ...]
    training: TrainingSpec
    baseline: str | None
    sweep: str | None = None
    sweep_values: dict = field(default_factory=dict)


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


@dataclass(frozen=True)
class Run:
    experiment: str
    loss: str
    seed: int


@dataclass
class Plan:
    datasets: dict[str, DatasetSpec]
    noise: dict[str, NoiseSpec]
    experiments: dict[str, Experiment]
    sweeps: dict[str, Sweep]
    figures: dict[str, dict]
    runs: list[Run]

    def noise_draws(self) -> list[tuple[str, str, int]]:
        """Every (dataset, noise, seed) whose noisy labels some run reads, in a stable order."""
        return sorted(
            {
                (exp.dataset, exp.noise, seed)
                for exp in self.experiments.values()
                if exp.noise is not None
                for seed in exp.seeds
            }
        )


def build_plan(config: dict, check_files: bool = True) -> Plan:
    """Check ``config`` (already schema-validated or not) and expand it into a plan.

    ``check_files``: also check that local dataset paths hold what their kind reads.
    """
    if not isinstance(config, dict):
        raise fail("", config, "a mapping of top-level keys")
    for block in BLOCKS:
        for name in config.get(block) or {}:
            _check_name(f"{block}.{name}", name)
    builder = _Builder(config)
    plan = builder.build()
    used = {exp.dataset for exp in plan.experiments.values()} if check_files else set()
    for name in sorted(used):
        spec = plan.datasets[name]
        base = name.split(SWEEP_SEP, 1)[0]
        datasets_spec.check_local_files(f"datasets.{base}", base, spec.config)
    return plan


def _check_name(key: str, name: object) -> None:
    if not isinstance(name, str) or not SAFE_NAME.match(name):
        raise ConfigError(
            key,
            f"name {name!r} is not allowed; names are letters and digits, joined by single '_' "
            "or '-' (they become folder names and wildcards)",
        )


class _Builder:
    def __init__(self, config: dict):
        self.config = config
        self.registry = Registry()
        self.datasets = {
            name: DatasetSpec(name, datasets_spec.validate(name, cfg))
            for name, cfg in self._block("datasets").items()
        }
        self.noise = {name: self._noise(name, cfg) for name, cfg in self._block("noise").items()}
        self.models = {
            name: ModelSpec.from_config(f"models.{name}", cfg)
            for name, cfg in self._block("models").items()
        }
        self.losses = {
            name: LossSpec.from_config(f"losses.{name}", cfg)
            for name, cfg in self._block("losses").items()
        }

    def _block(self, block: str) -> dict:
        value = self.config.get(block) or {}
        if not isinstance(value, dict):
            raise fail(block, value, f"a mapping of {BLOCKS[block]} names to settings")
        return value

    @staticmethod
    def _noise(name: str, setting: dict, key: str | None = None) -> NoiseSpec:
        try:
            record = noise_spec.resolve(setting)
        except ConfigError as err:
            raise err.under(key or f"noise.{name}") from None
        return NoiseSpec(name, copy.deepcopy(setting), record)

    def build(self) -> Plan:
        experiments = {
            name: self._experiment(name, exp) for name, exp in self._block("experiments").items()
        }
        sweeps = {}
        for name, sweep in self._block("sweeps").items():
            sweeps[name], points = self._sweep(name, sweep, experiments)
            experiments.update(points)
        figures = {
            name: self._figure(f"figures.{name}", fig, experiments)
            for name, fig in self._block("figures").items()
        }
        if self.config.get("reproduction") is not None:
            _check_reproduction(self.config["reproduction"], experiments, figures)
        runs = [
            Run(name, loss, seed)
            for name, exp in experiments.items()
            for loss in exp.losses
            for seed in exp.seeds
        ]
        return Plan(self.datasets, self.noise, experiments, sweeps, figures, runs)

    # ------------------------------------------------------------------------ experiments

    def _ref(self, key: str, block: str, name: object) -> Any:
        known = self._block(block)
        if name not in known:
            listed = ", ".join(sorted(known)) or "none"
            raise ConfigError(
                key, f"unknown {BLOCKS[block]} {name!r} (defined in {block}: {listed})"
            )
        return name

    def _experiment(self, name: str, exp: dict) -> Experiment:
        key = f"experiments.{name}"
        if not isinstance(exp, dict):
            raise fail(key, exp, "a mapping with dataset, model, losses and seeds")
        dataset = self._ref(f"{key}.dataset", "datasets", exp.get("dataset"))
        model = self._ref(f"{key}.model", "models", exp.get("model"))
        noise = exp.get("noise")
        if noise is not None:
            self._ref(f"{key}.noise", "noise", noise)
        losses = exp.get("losses")
        if not isinstance(losses, list) or not losses:
            raise fail(f"{key}.losses", losses, "a non-empty list of names in losses")
        for i, loss in enumerate(losses):
            self._ref(f"{key}.losses[{i}]", "losses", loss)
            if losses.index(loss) != i:
                raise ConfigError(f"{key}.losses[{i}]", f"{loss!r} is listed twice")
        seeds = _seeds(f"{key}.seeds", exp.get("seeds"))
        training = TrainingSpec.from_config(f"{key}.training", exp.get("training"))
        baseline = exp.get("baseline")
        if baseline is None:
            baseline = next((n for n in losses if self.losses[n].type == "mse"), None)
        elif baseline not in losses:
            raise ConfigError(
                f"{key}.baseline", f"{baseline!r} is not one of its losses {list(losses)}"
            )
        result = Experiment(
            name=name,
            dataset=dataset,
            model=self.models[model],
            noise=noise,
            losses={loss: self.losses[loss] for loss in losses},
            seeds=seeds,
            training=training,
            baseline=baseline,
        )
        self._check_fit(result, {"batch": f"{key}.training.batch_size", "model": f"{key}.model"})
        return result

    def _check_fit(self, exp: Experiment, keys: dict[str, str]) -> None:
        """The batch size and the model must fit the dataset."""
        data = self.datasets[exp.dataset]
        n, bs = data.n_train, exp.training.batch_size
        if bs > n:
            raise ConfigError(
                keys["batch"],
                f"{bs} is larger than the training set of dataset {exp.dataset!r} ({n} samples); "
                f"allowed: 1 to {n}",
            )
        steps = exp.training.steps_per_epoch(n)
        smallest = bs if exp.training.drop_last else n - (steps - 1) * bs
        if exp.model.has_batchnorm and smallest < 2:
            raise ConfigError(
                keys["batch"],
                f"{bs} leaves a last batch of 1 sample of the {n} training samples, which "
                "BatchNorm cannot train on; choose another batch size or drop_last: true",
            )
        size = data.config.get("image_size") or UTKFACE_NATIVE_SIZE
        shape = (3, size, size) if data.images else (0,)
        check_input(keys["model"], exp.model, shape)

    # ------------------------------------------------------------------------ sweeps

    def _sweep(self, name: str, sweep: dict, experiments: dict) -> tuple[Sweep, dict]:
        key = f"sweeps.{name}"
        base_name = self._ref(f"{key}.experiment", "experiments", sweep.get("experiment"))
        base = experiments[base_name]
        losses = sweep.get("losses") or list(base.losses)
        for i, loss in enumerate(losses):
            if loss not in base.losses:
                raise ConfigError(
                    f"{key}.losses[{i}]", f"{loss!r} is not a loss of experiment {base_name!r}"
                )
        seeds = _seeds(f"{key}.seeds", sweep["seeds"]) if "seeds" in sweep else base.seeds
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
            exp_name = self.registry.name(name, assignment, assignment)
            exp = self._point(key, base_name, base, losses, seeds, where)
            exp = Experiment(
                **{**exp.__dict__, "name": exp_name, "sweep": name, "sweep_values": assignment}
            )
            experiments_out[exp_name] = exp
            points.append(SweepPoint(exp_name, assignment))
        title = sweep.get("title") or name
        result = Sweep(name, title, base_name, tuple(losses), copy.deepcopy(vary), tuple(points))
        return result, experiments_out

    def _point(
        self,
        key: str,
        base_name: str,
        base: Experiment,
        losses: list[str],
        seeds: tuple[int, ...],
        where: dict[str, tuple[int, Any]],
    ) -> Experiment:
        """The base experiment with one point's values applied and checked."""
        user = self._block("experiments")[base_name]
        sections: dict[str, dict[str, tuple[int, Any]]] = {}
        for path, item in where.items():
            section, rest = path.split(".", 1)
            sections.setdefault(section, {})[rest] = item

        def rekey(err: ConfigError, prefix: str, own: dict[str, tuple[int, Any]]) -> ConfigError:
            for rest, (i, _) in own.items():
                full = f"{prefix}.{_brackets(rest)}"
                if err.key == full or err.key.startswith((f"{full}.", f"{full}[")):
                    user_key = f"{key}.vary.{_section_path(prefix, rest)}[{i}]"
                    return err.rekeyed(user_key + err.key[len(full) :])
            shown = ", ".join(f"{p}={v!r}" for p, (_, v) in where.items())
            return ConfigError(err.key, f"{err.problem} (at the point {shown} of {key})")

        def applied(target: Any, prefix: str, own: dict[str, tuple[int, Any]]) -> Any:
            target = copy.deepcopy(target)
            for rest, (_, value) in own.items():
                vkey = f"{key}.vary.{_section_path(prefix, rest)}"
                target = _assign(vkey, base_name, target, rest.split("."), copy.deepcopy(value))
            return target

        training = base.training
        if "training" in sections:
            prefix = f"experiments.{base_name}.training"
            cfg = applied(user.get("training") or {}, prefix, sections["training"])
            try:
                training = TrainingSpec.from_config(prefix, cfg)
            except ConfigError as err:
                raise rekey(err, prefix, sections["training"]) from None
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
            cfg = self._block("losses")[loss]
            for rest, (_, value) in own.items():
                if rest == "":
                    cfg = copy.deepcopy(value)
                else:
                    vkey = f"{key}.vary.losses.{loss}.{rest}"
                    cfg = _assign(vkey, base_name, copy.deepcopy(cfg), rest.split("."), value)
            try:
                loss_specs[loss] = LossSpec.from_config(prefix, cfg)
            except ConfigError as err:
                raise _rekey_loss(err, key, loss, own) from None
        noise = base.noise
        if "noise" in sections:
            setting = applied(self._block("noise")[noise], f"noise.{noise}", sections["noise"])
            derived = self.registry.name(noise, _values(sections["noise"]), setting)
            try:
                self.noise.setdefault(derived, self._noise(derived, setting, f"noise.{noise}"))
            except ConfigError as err:
                raise rekey(err, f"noise.{noise}", sections["noise"]) from None
            noise = derived
        dataset = base.dataset
        if "dataset" in sections:
            prefix = f"datasets.{dataset}"
            cfg = applied(self._block("datasets")[dataset], prefix, sections["dataset"])
            derived = self.registry.name(dataset, _values(sections["dataset"]), cfg)
            try:
                spec = datasets_spec.validate(dataset, cfg, prefix)
            except ConfigError as err:
                raise rekey(err, prefix, sections["dataset"]) from None
            self.datasets.setdefault(derived, DatasetSpec(derived, spec))
            dataset = derived
        model = base.model
        if "model" in sections:
            prefix = f"models.{user['model']}"
            cfg = applied(self._block("models")[user["model"]], prefix, sections["model"])
            try:
                model = ModelSpec.from_config(prefix, cfg)
            except ConfigError as err:
                raise rekey(err, prefix, sections["model"]) from None
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
        }
        self._check_fit(exp, keys)
        return exp

    # ------------------------------------------------------------------------ figures

    def _figure(self, key: str, fig: dict, experiments: dict) -> dict:
        from biv.figure_spec import check_panel

        fig = copy.deepcopy(fig)
        panels = fig.get("panels") or []
        for i, panel in enumerate(panels):
            pkey = f"{key}.panels[{i}]"
            exp = experiments.get(panel.get("experiment"))
            if exp is None:
                raise ConfigError(
                    f"{pkey}.experiment", f"unknown experiment {panel.get('experiment')!r}"
                )
            if panel.get("reference") is not None:
                _check_run_ref(f"{pkey}.reference", panel["reference"], experiments)
            types = {name: loss.type for name, loss in exp.losses.items()}
            try:
                panels[i] = check_panel(pkey, panel, list(exp.losses), types)
            except ValueError as err:
                raise ConfigError("", str(err)) from None
        return fig


def _seeds(key: str, seeds: object) -> tuple[int, ...]:
    if not isinstance(seeds, list) or not seeds:
        raise fail(key, seeds, "a non-empty list of integers >= 0")
    for i, seed in enumerate(seeds):
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise fail(f"{key}[{i}]", seed, "an integer >= 0")
        if seeds.index(seed) != i:
            raise ConfigError(key, f"{seeds} repeats seed {seed}; every seed must differ")
    return tuple(seeds)


def _values(own: dict[str, tuple[int, Any]]) -> dict[str, Any]:
    return {rest: value for rest, (_, value) in own.items()}


def _brackets(dotted: str) -> str:
    """components.0.mean -> components[0].mean (how errors write list items)."""
    return re.sub(r"\.(\d+)(?=\.|$)", r"[\1]", dotted).lstrip(".")


def _section_path(prefix: str, rest: str) -> str:
    section = {
        "experiments": "training",
        "noise": "noise",
        "datasets": "dataset",
        "models": "model",
    }[prefix.split(".")[0]]
    return f"{section}.{rest}"


def _rekey_loss(err: ConfigError, key: str, loss: str, own: dict) -> ConfigError:
    prefix = f"losses.{loss}"
    for rest, (i, _) in own.items():
        full = f"{prefix}.{_brackets(rest)}" if rest else prefix
        if err.key == full or err.key.startswith((f"{full}.", f"{full}[")):
            path = f"losses.{loss}" + (f".{rest}" if rest else "")
            return err.rekeyed(f"{key}.vary.{path}[{i}]" + err.key[len(full) :])
    return err


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


def _assign(key: str, base: str, target: Any, parts: list[str], value: Any) -> Any:
    """``target`` with ``value`` put at the path ``parts`` (lists by index)."""
    node = target
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(key, f"{part!r} is not an index of a list of {len(node)}")
            index: Any = int(part)
        elif isinstance(node, dict):
            if not last and part not in node:
                walked = ".".join(key.split(".vary.", 1)[1].split(".")[: -len(parts) + depth + 1])
                raise ConfigError(key, f"{walked!r} does not exist in experiment {base!r}")
            index = part
        else:
            raise ConfigError(key, f"cannot set {part!r} inside {node!r}")
        if last:
            node[index] = value
        else:
            node = node[index]
    return target


def _check_run_ref(key: str, ref: dict, experiments: dict) -> None:
    exp = experiments.get(ref.get("experiment"))
    if exp is None:
        raise ConfigError(f"{key}.experiment", f"unknown experiment {ref.get('experiment')!r}")
    if ref.get("loss") not in exp.losses:
        raise ConfigError(f"{key}.loss", f"{ref.get('loss')!r} is not a loss of {exp.name!r}")


def _check_reproduction(block: dict, experiments: dict, figures: dict) -> None:
    if block["figure"] not in figures:
        raise ConfigError("reproduction.figure", f"unknown figure {block['figure']!r}")
    reference = _reference_panels(block["reference"])
    for name, panel in block["panels"].items():
        key = f"reproduction.panels.{name}"
        if name not in reference:
            raise ConfigError(
                key,
                f"no panel {name!r} in the reference file {block['reference']!r} "
                f"(it has: {', '.join(sorted(reference)) or 'none'})",
            )
        exp = experiments.get(panel["experiment"])
        if exp is None:
            raise ConfigError(f"{key}.experiment", f"unknown experiment {panel['experiment']!r}")
        for role in ("l2", "biv"):
            if panel[role] not in exp.losses:
                raise ConfigError(f"{key}.{role}", f"{panel[role]!r} is not a loss of {exp.name!r}")
        for i, loss in enumerate(panel.get("cutoffs", [])):
            if loss not in exp.losses:
                raise ConfigError(f"{key}.cutoffs[{i}]", f"{loss!r} is not a loss of {exp.name!r}")
        _check_run_ref(f"{key}.no_noise", panel["no_noise"], experiments)


def _reference_panels(path: str) -> dict:
    import yaml

    file = Path(path)
    if not file.is_file():
        raise ConfigError("reproduction.reference", f"{path!r} does not exist")
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as err:
        raise ConfigError("reproduction.reference", f"{path!r} is not valid YAML ({err})") from None
    panels = data.get("panels") if isinstance(data, dict) else None
    if not isinstance(panels, dict):
        raise ConfigError("reproduction.reference", f"{path!r} has no `panels:` mapping")
    return panels
