"""The plan: a config checked once and every sweep expanded by value into experiments and runs.

Every error is a ConfigError naming the key as the user wrote it, sweep values included
(``sweeps.<name>.vary.<path>[<index>]``). Nothing here imports torch.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from biv.config import dataset as datasets_spec
from biv.config import noise as noise_spec
from biv.config.errors import ConfigError, fail
from biv.config.experiment import DatasetSpec, Experiment, Run, check_seeds
from biv.config.figures import Figure, build_figure
from biv.config.loss import LossSpec
from biv.config.model import ModelSpec, check_input
from biv.config.naming import Registry
from biv.config.noise import NoiseSpec
from biv.config.reproduction import Reproduction, build_reproduction
from biv.config.sweeps import Sweep, expand_sweep
from biv.config.training import TrainingSpec

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


@dataclass(frozen=True)
class Pack:
    """The runs of one (experiment, loss) that one workflow job trains together: those whose
    seeds lie in one block of ``training.pack_size`` consecutive seed values (:func:`pack_name`),
    so that adding a seed changes at most one pack and a loss only its own packs. Its members
    share one prepared dataset, ``dataset``: where every run splits the data with its own seed
    (``split_seed: run``), a pack holds one seed."""

    experiment: str
    loss_name: str
    name: str
    seeds: tuple[int, ...]
    dataset: str

    @property
    def runs(self) -> list[Run]:
        return [Run(self.experiment, self.loss_name, seed) for seed in self.seeds]


def pack_name(seed: int, pack_size: int) -> str:
    """The name of the pack of ``seed``, a function of its seed block alone: ``seeds1-5``,
    ``seeds6-10``, ... for pack_size 5."""
    low = (seed - 1) // pack_size * pack_size + 1
    return f"seeds{low}-{low + pack_size - 1}"


@dataclass
class Plan:
    datasets: dict[str, DatasetSpec]
    noise: dict[str, NoiseSpec]
    experiments: dict[str, Experiment]
    sweeps: dict[str, Sweep]
    figures: dict[str, Figure]
    runs: list[Run]
    reproduction: Reproduction | None  # None: no reproduction report
    #: (dataset, seed) -> the dataset of that seed's split, for datasets split per run
    splits: dict[tuple[str, int], str] = field(default_factory=dict)

    @cached_property
    def packs(self) -> dict[tuple[str, str, str], Pack]:
        """Every pack by (experiment, loss, name), in the order of the runs; a pack's seeds are
        sorted (reordering the config's seeds changes no pack)."""
        seeds: dict[tuple[str, str, str], list[int]] = {}
        for run in self.runs:
            key = (run.experiment, run.loss_name, self.pack_of(run))
            seeds.setdefault(key, []).append(run.seed)
        return {
            key: Pack(*key, tuple(sorted(members)), self.dataset_of(key[0], members[0]))
            for key, members in seeds.items()
        }

    def pack_of(self, run: Run) -> str:
        """The name of the pack that trains ``run`` (:func:`pack_name`): of its seed alone where
        its dataset splits per run (runs with different splits share no pack)."""
        exp = self.experiments[run.experiment]
        split_per_run = self.datasets[exp.dataset].config.split_per_run
        return pack_name(run.seed, 1 if split_per_run else exp.training.pack_size)

    def dataset_of(self, experiment: str, seed: int) -> str:
        """The dataset the run of ``experiment`` with ``seed`` trains on: the experiment's, or
        where that splits per run, the one of the seed's split."""
        dataset = self.experiments[experiment].dataset
        return self.splits.get((dataset, seed), dataset)

    def prepared_datasets(self) -> list[str]:
        """Every dataset some run trains on (one prepared file each), sorted."""
        return sorted({pack.dataset for pack in self.packs.values()})

    @cached_property
    def noise_draws(self) -> dict[tuple[str, str, str], tuple[int, ...]]:
        """Every noise-draw file by (dataset, noise, seed block): the seeds it holds, those of
        the packs of that block (:func:`pack_name`) on that prepared dataset (``Pack.dataset``)
        and noise setting. So a new seed reruns only its block's draws and packs, an edited noise
        setting only its draws and their packs."""
        seeds: dict[tuple[str, str, str], set[int]] = {}
        for pack in self.packs.values():
            noise = self.experiments[pack.experiment].noise
            if noise is not None:
                seeds.setdefault((pack.dataset, noise, pack.name), set()).update(pack.seeds)
        return {key: tuple(sorted(members)) for key, members in sorted(seeds.items())}

    def cutoff_thresholds(self, dataset: str, noise: str) -> list[float]:
        """The sigma^2 thresholds (raw units) of the losses with one (cutoff) trained on the
        draws of (dataset, noise)."""
        thresholds = set()
        for pack in self.packs.values():
            exp = self.experiments[pack.experiment]
            params = exp.losses[pack.loss_name].params
            if (pack.dataset, exp.noise) == (dataset, noise) and "threshold" in params:
                thresholds.add(float(params["threshold"]))
        return sorted(thresholds)

    def noise_settings(self) -> list[tuple[str, str]]:
        """Every (dataset, noise) whose resolved setting some run draws its labels from, in a
        stable order."""
        return sorted(
            {
                (pack.dataset, noise)
                for pack in self.packs.values()
                if (noise := self.experiments[pack.experiment].noise) is not None
            }
        )


#: The (training, test) sizes of a ``table`` dataset, read from its file (DatasetSpec.table_sizes).
TableSizes = Callable[[DatasetSpec], tuple[int, int]]


def build_plan(config: dict, table_sizes: TableSizes | None = None) -> Plan:
    """Check ``config`` (schema-validated with its defaults: biv.config.validation) and expand
    it into a plan. No file is read here: ``table_sizes`` gives a ``table`` dataset's sizes (its
    file read once, when an experiment uses it); without it, batch sizes are not checked against
    tables. The workflow's plan also checks the local data (:func:`biv.workflow.plan.load_plan`).
    """
    if not isinstance(config, dict):
        raise fail("", config, "a mapping of top-level keys")
    for block in BLOCKS:
        for name in config.get(block) or {}:
            _check_name(f"{block}.{name}", name)
    return Builder(config, table_sizes).build()


def _check_name(key: str, name: object) -> None:
    if not isinstance(name, str) or not SAFE_NAME.match(name):
        raise ConfigError(
            key,
            f"name {name!r} is not allowed; names are letters and digits, joined by single '_' "
            "or '-' (they become folder names and wildcards)",
        )


class Builder:
    """Parses the named blocks once; experiments and sweeps are built from them."""

    def __init__(self, config: dict, table_sizes: TableSizes | None = None):
        self.config = config
        self.table_sizes = table_sizes
        self.registry = Registry()
        self.datasets = {
            name: DatasetSpec(name, datasets_spec.parse(name, cfg))
            for name, cfg in self.block("datasets").items()
        }
        self.noise = {
            name: self.resolve_noise(name, cfg) for name, cfg in self.block("noise").items()
        }
        self.models = {
            name: ModelSpec.from_config(f"models.{name}", cfg)
            for name, cfg in self.block("models").items()
        }
        self.losses = {
            name: LossSpec.from_config(f"losses.{name}", cfg)
            for name, cfg in self.block("losses").items()
        }

    def block(self, block: str) -> dict:
        value = self.config.get(block) or {}
        if not isinstance(value, dict):
            raise fail(block, value, f"a mapping of {BLOCKS[block]} names to settings")
        return value

    @staticmethod
    def resolve_noise(name: str, setting: dict, key: str | None = None) -> NoiseSpec:
        try:
            return noise_spec.resolve(setting)
        except ConfigError as err:
            raise err.under(key or f"noise.{name}") from None

    def build(self) -> Plan:
        experiments = {
            name: self._experiment(name, exp) for name, exp in self.block("experiments").items()
        }
        sweeps = {}
        for name, sweep in self.block("sweeps").items():
            sweeps[name], points = expand_sweep(self, name, sweep, experiments)
            experiments.update(points)
        figures = {
            name: build_figure(name, fig, experiments)
            for name, fig in self.block("figures").items()
        }
        reproduction = self.config.get("reproduction")
        if reproduction is not None:
            reproduction = build_reproduction(reproduction, experiments, figures)
        runs = [
            Run(name, loss, seed)
            for name, exp in experiments.items()
            for loss in exp.losses
            for seed in exp.seeds
        ]
        splits = {
            (exp.dataset, seed): self.split(exp.dataset, seed)
            for exp in experiments.values()
            if self.datasets[exp.dataset].config.split_per_run
            for seed in exp.seeds
        }
        return Plan(
            self.datasets, self.noise, experiments, sweeps, figures, runs, reproduction, splits
        )

    def split(self, name: str, seed: int) -> str:
        """The dataset of one split of dataset ``name`` (``split_seed: run``): the one
        ``split_seed: <seed>`` makes, named like a sweep point from the keys in which it differs
        from the config's entry (one name for one content, however a sweep derived ``name``)."""
        data = self.datasets[name]
        config = data.config.split_with(seed)
        content = config.to_dict()
        entry = self.datasets[data.base].config.to_dict()
        changed = {key: value for key, value in content.items() if entry[key] != value}
        derived = self.registry.name(data.base, changed, content)
        self.datasets.setdefault(derived, replace(data, name=derived, config=config))
        self.sized(derived)  # a table's split read and checked
        return derived

    # ------------------------------------------------------------------------ experiments

    def ref(self, key: str, block: str, name: object) -> Any:
        known = self.block(block)
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
        dataset = self.ref(f"{key}.dataset", "datasets", exp.get("dataset"))
        model = self.ref(f"{key}.model", "models", exp.get("model"))
        noise = exp.get("noise")
        if noise is not None:
            self.ref(f"{key}.noise", "noise", noise)
        losses = exp.get("losses")
        if not isinstance(losses, list) or not losses:
            raise fail(f"{key}.losses", losses, "a non-empty list of names in losses")
        for i, loss in enumerate(losses):
            self.ref(f"{key}.losses[{i}]", "losses", loss)
            if losses.index(loss) != i:
                raise ConfigError(f"{key}.losses[{i}]", f"{loss!r} is listed twice")
        seeds = check_seeds(f"{key}.seeds", exp.get("seeds"))
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
        keys = {
            "batch": f"{key}.training.batch_size",
            "model": f"{key}.model",
            "eval_batch": f"{key}.training.eval_batch_size",
        }
        self.check_fit(result, keys)
        return result

    def check_fit(self, exp: Experiment, keys: dict[str, str]) -> None:
        """The batch sizes and the model must fit the dataset; noise is drawn onto clean labels."""
        data = self.datasets[exp.dataset]
        if exp.noise is not None and not data.clean_test_labels:
            raise ConfigError(
                keys.get("noise", f"experiments.{exp.name}.noise"),
                f"{exp.noise!r} is not allowed; dataset {data.base!r} has its own noisy labels "
                f"(datasets.{data.base}.variance) and no clean_target to draw synthetic noise "
                f"onto; remove the noise key to train on the file's labels, or set "
                f"datasets.{data.base}.clean_target",
            )
        data = self.sized(exp.dataset)
        size = data.config.image_side if data.images else 0
        shape = (3, size, size) if data.images else (0,)
        if not data.sized:
            check_input(keys["model"], exp.model, shape)
            return
        n, bs = data.n_train, exp.training.batch_size
        if bs > n:
            raise ConfigError(
                keys["batch"],
                f"{bs} is larger than the training set of dataset {exp.dataset!r} ({n} samples); "
                f"allowed: 1 to {n}",
            )
        if exp.model.has_batchnorm:
            n_test = data.n_test
            exp.training.check_batchnorm((keys["batch"], keys["eval_batch"]), n, n_test)
        check_input(keys["model"], exp.model, shape)

    def sized(self, name: str) -> DatasetSpec:
        """Dataset ``name`` with its sizes: a table's read once, when first needed."""
        data = self.datasets[name]
        if not data.sized and self.table_sizes is not None:
            data = self.datasets[name] = replace(data, table_sizes=self.table_sizes(data))
        return data
