"""Turn a validated workflow config into the plan the Snakemake rules follow.

The plan names every job: datasets, noise settings, experiments (sweeps expanded into one
experiment per sweep point), and the (experiment, loss, seed) training runs. Everything here is
checked before any job starts, so a bad config fails at start-up with one message naming the key.
"""

from __future__ import annotations

import copy
import itertools
import re
from dataclasses import dataclass, field
from typing import Any

SAFE_NAME = re.compile(r"^[A-Za-z0-9]+([_-][A-Za-z0-9]+)*$")
SWEEP_SEP = "__"

RESULTS = "results"
KINDS = {"datasets": "dataset", "noise": "noise", "models": "model", "losses": "loss"}


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key and the value."""


@dataclass(frozen=True)
class Run:
    experiment: str
    loss: str
    seed: int


@dataclass
class Plan:
    datasets: dict[str, dict]
    noise: dict[str, dict]
    experiments: dict[str, dict]
    sweeps: dict[str, dict]
    figures: dict[str, dict]
    runs: list[Run] = field(default_factory=list)

    def noise_draws(self) -> list[tuple[str, str, int]]:
        """Every (dataset, noise, seed) whose noisy labels some run reads, in a stable order."""
        draws = {
            (exp["dataset"], exp["noise"], seed)
            for exp in self.experiments.values()
            if exp["noise"] is not None
            for seed in exp["seeds"]
        }
        return sorted(draws)


# ---------------------------------------------------------------------------------------------
# paths


def dataset_file(dataset: str) -> str:
    return f"{RESULTS}/data/{dataset}.pt"


def noise_params_file(noise: str) -> str:
    return f"{RESULTS}/noise_params/{noise}.json"


def noise_file(dataset: str, noise: str, seed: int | str) -> str:
    return f"{RESULTS}/noise/{dataset}/{noise}/seed{seed}.pt"


def run_dir(experiment: str, loss: str, seed: int | str) -> str:
    return f"{RESULTS}/runs/{experiment}/{loss}/seed{seed}"


# ---------------------------------------------------------------------------------------------
# plan


def build_plan(config: dict) -> Plan:
    """Check cross-references and expand sweeps; raises ConfigError naming the offending key."""
    for block in ("datasets", "noise", "models", "losses", "experiments", "sweeps", "figures"):
        for name in config.get(block, {}):
            _check_name(f"{block}.{name}", name)
    datasets = copy.deepcopy(config["datasets"])
    noise = copy.deepcopy(config.get("noise", {}))
    experiments = {
        name: _resolve_experiment(config, f"experiments.{name}", exp)
        for name, exp in config["experiments"].items()
    }
    sweeps = {}
    for name, sweep in config.get("sweeps", {}).items():
        points = _expand_sweep(config, name, sweep, experiments, datasets, noise)
        sweeps[name] = {**sweep, "name": name, "points": [point for point, _ in points]}
        for point, exp in points:
            experiments[point["experiment"]] = exp
    figures = copy.deepcopy(config.get("figures", {}))
    for name, fig in figures.items():
        for i, panel in enumerate(fig["panels"]):
            key = f"figures.{name}.panels[{i}]"
            _check_panel(key, panel, experiments)
            panel.setdefault("losses", list(experiments[panel["experiment"]]["losses"]))
    if "reproduction" in config:
        _check_reproduction(config["reproduction"], experiments, figures)
    _check_noise_settings(noise, experiments)
    _check_datasets(datasets, experiments)
    runs = [
        Run(name, loss, seed)
        for name, exp in experiments.items()
        for loss in exp["losses"]
        for seed in exp["seeds"]
    ]
    plan = Plan(datasets, noise, experiments, sweeps, figures, runs)
    _check_runs(plan)
    return plan


def _check_name(key: str, name: str) -> None:
    if not SAFE_NAME.match(name):
        raise ConfigError(
            f"{key}: name {name!r} is not allowed; names are letters and digits, joined by "
            "single '_' or '-' (they become folder names and wildcards)"
        )


def _lookup(config: dict, block: str, key: str, name: Any) -> dict:
    if name not in config.get(block, {}):
        known = ", ".join(sorted(config.get(block, {}))) or "none"
        raise ConfigError(f"{key}: unknown {KINDS[block]} {name!r} (defined in {block}: {known})")
    return config[block][name]


def _resolve_experiment(config: dict, key: str, exp: dict) -> dict:
    _lookup(config, "datasets", f"{key}.dataset", exp["dataset"])
    model = _lookup(config, "models", f"{key}.model", exp["model"])
    if exp.get("noise") is not None:
        _lookup(config, "noise", f"{key}.noise", exp["noise"])
    losses = {}
    for i, loss in enumerate(exp["losses"]):
        losses[loss] = copy.deepcopy(_lookup(config, "losses", f"{key}.losses[{i}]", loss))
    if len(set(exp["seeds"])) != len(exp["seeds"]):
        raise ConfigError(f"{key}.seeds: {exp['seeds']} repeats a seed")
    baseline = exp.get("baseline")
    if baseline is None:
        baseline = next((n for n, spec in losses.items() if spec["type"] == "mse"), None)
    elif baseline not in losses:
        raise ConfigError(f"{key}.baseline: {baseline!r} is not one of its losses {list(losses)}")
    return {
        "dataset": exp["dataset"],
        "model": copy.deepcopy(model),
        "noise": exp.get("noise"),
        "losses": losses,
        "seeds": list(exp["seeds"]),
        "training": copy.deepcopy(exp["training"]),
        "baseline": baseline,
        "sweep": None,
    }


def _check_panel(key: str, panel: dict, experiments: dict) -> None:
    if panel["experiment"] not in experiments:
        raise ConfigError(f"{key}.experiment: unknown experiment {panel['experiment']!r}")
    exp = experiments[panel["experiment"]]
    for loss in panel.get("losses", []):
        if loss not in exp["losses"]:
            raise ConfigError(
                f"{key}.losses: {loss!r} is not a loss of experiment {panel['experiment']!r}"
            )
    ref = panel.get("reference")
    if ref is not None:
        if ref["experiment"] not in experiments:
            raise ConfigError(f"{key}.reference.experiment: unknown {ref['experiment']!r}")
        if ref["loss"] not in experiments[ref["experiment"]]["losses"]:
            raise ConfigError(
                f"{key}.reference.loss: {ref['loss']!r} is not a loss of {ref['experiment']!r}"
            )


def _check_noise_settings(noise: dict, experiments: dict) -> None:
    """Resolve every noise setting now, so an impossible one fails before any job."""
    from biv.params import resolve

    used = {exp["noise"] for exp in experiments.values()} - {None}
    for name in sorted(set(noise) | used):
        try:
            resolve(noise[name])
        except ValueError as err:
            raise ConfigError(f"{_origin('noise', name)}: {err}") from None


def _check_datasets(datasets: dict, experiments: dict) -> None:
    from biv.data import validate

    for name in sorted({exp["dataset"] for exp in experiments.values()}):
        try:
            validate(name, datasets[name])
        except ValueError as err:  # its message already names datasets.<name>.<key>
            raise ConfigError(str(err)) from None


def _check_runs(plan: Plan) -> None:
    """Check the training block and model of every run the way ``biv train`` will."""
    from biv.train import resolve_params

    for run in plan.runs:
        try:
            resolve_params(run_params(plan, run.experiment, run.loss, run.seed))
        except ValueError as err:
            raise ConfigError(f"{_origin('experiments', run.experiment)}: {err}") from None


def _origin(block: str, name: str) -> str:
    base, _, point = name.partition(SWEEP_SEP)
    return f"{block}.{base}" + (f" (sweep point {point})" if point else "")


def _check_reproduction(block: dict, experiments: dict, figures: dict) -> None:
    if block["figure"] not in figures:
        raise ConfigError(f"reproduction.figure: unknown figure {block['figure']!r}")
    for name, panel in block["panels"].items():
        key = f"reproduction.panels.{name}"
        if panel["experiment"] not in experiments:
            raise ConfigError(f"{key}.experiment: unknown experiment {panel['experiment']!r}")
        losses = experiments[panel["experiment"]]["losses"]
        for role in ("l2", "biv"):
            if panel[role] not in losses:
                raise ConfigError(f"{key}.{role}: {panel[role]!r} is not a loss of the experiment")
        for loss in panel.get("cutoffs", []):
            if loss not in losses:
                raise ConfigError(f"{key}.cutoffs: {loss!r} is not a loss of the experiment")
        ref = panel["no_noise"]
        if ref["experiment"] not in experiments:
            raise ConfigError(f"{key}.no_noise.experiment: unknown {ref['experiment']!r}")
        if ref["loss"] not in experiments[ref["experiment"]]["losses"]:
            raise ConfigError(f"{key}.no_noise.loss: {ref['loss']!r} is not a loss of it")


# ---------------------------------------------------------------------------------------------
# sweeps

SWEEPABLE = ("training", "losses", "noise", "dataset", "model")


def _expand_sweep(
    config: dict, name: str, sweep: dict, experiments: dict, datasets: dict, noise: dict
) -> list[tuple[dict, dict]]:
    """One derived experiment per point of the grid product of ``sweep['vary']``."""
    key = f"sweeps.{name}"
    base_name = sweep["experiment"]
    if base_name not in experiments:
        raise ConfigError(f"{key}.experiment: unknown experiment {base_name!r}")
    base = experiments[base_name]
    losses = sweep.get("losses", list(base["losses"]))
    for loss in losses:
        if loss not in base["losses"]:
            raise ConfigError(f"{key}.losses: {loss!r} is not a loss of {base_name!r}")
    paths = list(sweep["vary"])
    for path in paths:
        _check_sweep_path(f"{key}.vary", path, base)
    points = []
    for values in itertools.product(*(sweep["vary"][p] for p in paths)):
        assignment = dict(zip(paths, values, strict=True))
        slug = _slug(paths, values, sweep["vary"])
        exp_name = f"{name}{SWEEP_SEP}{slug}"
        exp = copy.deepcopy(base)
        exp["losses"] = {loss: exp["losses"][loss] for loss in losses}
        if exp["baseline"] not in exp["losses"]:
            exp["baseline"] = None
        if "seeds" in sweep:
            exp["seeds"] = list(sweep["seeds"])
        exp["sweep"] = {"name": name, "base": base_name, "values": assignment}
        for section in {p.split(".", 1)[0] for p in paths}:
            own = {p: v for p, v in assignment.items() if p.split(".", 1)[0] == section}
            if section == "dataset":
                derived = f"{exp['dataset']}{SWEEP_SEP}{_slug(list(own), list(own.values()))}"
                cfg = copy.deepcopy(datasets[exp["dataset"]])
                _assign_all(f"{key}.vary", cfg, own, "dataset")
                datasets[derived] = cfg
                exp["dataset"] = derived
            elif section == "noise":
                if exp["noise"] is None:
                    raise ConfigError(f"{key}.vary: experiment {base_name!r} has no noise to vary")
                derived = f"{exp['noise']}{SWEEP_SEP}{_slug(list(own), list(own.values()))}"
                setting = copy.deepcopy(noise[exp["noise"]])
                _assign_all(f"{key}.vary", setting, own, "noise")
                noise[derived] = setting
                exp["noise"] = derived
            else:
                _assign_all(f"{key}.vary", exp, own, None)
        points.append(({"experiment": exp_name, "values": assignment}, exp))
    return points


def _check_sweep_path(key: str, path: str, base: dict) -> None:
    section = path.split(".", 1)[0]
    if section not in SWEEPABLE or "." not in path:
        raise ConfigError(
            f"{key}: {path!r} is not a sweepable path; it starts with one of "
            f"{', '.join(SWEEPABLE)} followed by '.' and a key (e.g. training.batch_size, "
            "losses.biv.epsilon, noise.average_mean, noise.components.0.mean, dataset.train_size)"
        )
    if section == "losses":
        loss = path.split(".")[1]
        if loss not in base["losses"]:
            raise ConfigError(f"{key}: {path!r} names loss {loss!r}, not a loss of the experiment")


def _assign_all(key: str, target: dict, assignment: dict, strip: str | None) -> None:
    for path, value in assignment.items():
        parts = path.split(".")
        if strip is not None:
            parts = parts[1:]
        _assign(f"{key}.{path}", target, parts, copy.deepcopy(value))


def _assign(key: str, target: Any, parts: list[str], value: Any) -> None:
    for i, part in enumerate(parts[:-1]):
        target = _child(key, target, part, parts[: i + 1])
    last = parts[-1]
    if isinstance(target, list):
        target[_index(key, target, last)] = value
    elif isinstance(target, dict):
        target[last] = value
    else:
        raise ConfigError(f"{key}: cannot set {last!r} inside {target!r}")


def _child(key: str, target: Any, part: str, walked: list[str]) -> Any:
    if isinstance(target, list):
        return target[_index(key, target, part)]
    if isinstance(target, dict) and part in target:
        return target[part]
    raise ConfigError(f"{key}: {'.'.join(walked)!r} does not exist in the experiment")


def _index(key: str, target: list, part: str) -> int:
    if not part.isdigit() or int(part) >= len(target):
        raise ConfigError(f"{key}: {part!r} is not an index of a list of {len(target)}")
    return int(part)


def _slug(paths: list[str], values: list[Any], grid: dict | None = None) -> str:
    """A readable, stable, wildcard-safe name for one sweep point."""
    parts = []
    for path, value in zip(paths, values, strict=True):
        segments = path.split(".")
        label = segments[-1] if not segments[-1].isdigit() else "".join(segments[-2:])
        label = label.replace("_", "")
        if isinstance(value, dict | list):
            index = grid[path].index(value) if grid is not None else 0
            text = f"v{index}"
        else:
            text = format_value(value)
        parts.append(f"{label}-{text}")
    return "_".join(parts)


def format_value(value: Any) -> str:
    """Numbers and words as safe name fragments: 0.001 -> 0p001, -1 -> m1, True -> true."""
    if isinstance(value, bool):
        return str(value).lower()
    text = repr(value) if isinstance(value, float) else str(value)
    text = text.replace("-", "m").replace(".", "p").replace("+", "")
    return re.sub(r"[^A-Za-z0-9]", "", text)


# ---------------------------------------------------------------------------------------------
# run parameters


def run_params(plan: Plan, experiment: str, loss: str, seed: int) -> dict:
    """The run-parameters dict that ``biv train`` consumes for one (experiment, loss, seed)."""
    exp = plan.experiments[experiment]
    noise = exp["noise"]
    return {
        "experiment": experiment,
        "loss_name": loss,
        "seed": int(seed),
        "dataset": {"name": exp["dataset"], "file": dataset_file(exp["dataset"])},
        "noise": None
        if noise is None
        else {"name": noise, "file": noise_file(exp["dataset"], noise, seed)},
        "loss": exp["losses"][loss],
        "model": exp["model"],
        "training": exp["training"],
    }


def experiment_table(plan: Plan) -> dict[str, dict]:
    """What the tables need to know of each experiment beyond its run files."""
    return {
        name: {
            "dataset": exp["dataset"],
            "noise": exp["noise"],
            "model": exp["model"]["name"],
            "baseline": exp["baseline"],
            "sweep": None if exp["sweep"] is None else exp["sweep"]["name"],
            "sweep_values": {} if exp["sweep"] is None else exp["sweep"]["values"],
        }
        for name, exp in plan.experiments.items()
    }


def figure_experiments(figure: dict) -> set[str]:
    """Experiments drawn in a learning-curve figure, references included."""
    shown = {panel["experiment"] for panel in figure["panels"]}
    shown |= {
        panel["reference"]["experiment"] for panel in figure["panels"] if "reference" in panel
    }
    return shown


def train_group(plan: Plan, experiment: str) -> str | None:
    """Job group of a training run: the small MLP runs form group ``train-mlp``, which a
    cluster profile packs several to a job (``group-components``); image models stay alone."""
    return "train-mlp" if plan.experiments[experiment]["model"]["name"] == "mlp" else None
