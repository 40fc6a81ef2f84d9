"""The named things of a plan: datasets, experiments and their runs (noise settings:
:mod:`biv.config.noise`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from biv.config import values as v
from biv.config.dataset import DatasetConfig, SyntheticConfig, TableConfig, UTKFaceConfig
from biv.config.errors import ConfigError, fail
from biv.config.loss import LossSpec
from biv.config.model import ModelSpec
from biv.config.naming import SWEEP_SEP
from biv.config.training import TrainingSpec


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    config: DatasetConfig  # the typed datasets entry (biv.config.dataset.parse)
    #: (training, test) samples of a ``table`` dataset, known once its file is read
    #: (:func:`biv.workflow.plan.load_plan`); the other kinds' sizes are their keys.
    table_sizes: tuple[int, int] | None = None

    @property
    def images(self) -> bool:
        return isinstance(self.config, UTKFaceConfig)

    @property
    def sized(self) -> bool:
        """Whether its sizes are known (a table's once its file is read)."""
        return not isinstance(self.config, TableConfig) or self.table_sizes is not None

    @property
    def n_train(self) -> int:
        """Training samples."""
        return self._size(0)

    @property
    def n_test(self) -> int:
        return self._size(1)

    def _size(self, split: int) -> int:
        cfg = self.config
        if isinstance(cfg, TableConfig):
            if self.table_sizes is None:
                raise ValueError(f"{self.name}: the sizes of a table are known once it is read")
            return self.table_sizes[split]
        if isinstance(cfg, SyntheticConfig):
            return (cfg.n_train, cfg.n_test)[split]
        return (cfg.train_size, cfg.test_size)[split]

    @property
    def base(self) -> str:
        """The name in the config's datasets block (a sweep's derived name without its suffix)."""
        return self.name.split(SWEEP_SEP, 1)[0]

    @property
    def file_noise(self) -> bool:
        """A table with a variance column: its labels come with their own noise."""
        return isinstance(self.config, TableConfig) and self.config.variance is not None

    @property
    def clean_test_labels(self) -> bool:
        """Whether the test labels are noise-free (else they carry the file's variances)."""
        return not self.file_noise or self.config.clean_target is not None


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
class Run:
    experiment: str
    loss_name: str
    seed: int


def check_seeds(key: str, seeds: object) -> tuple[int, ...]:
    if not isinstance(seeds, list) or not seeds:
        raise fail(key, seeds, f"a non-empty list of integers >= 0 and <= {v.MAX_SEED}")
    for i, seed in enumerate(seeds):
        v.integer(f"{key}[{i}]", seed, 0, v.MAX_SEED)
        if seeds.index(seed) != i:
            raise ConfigError(key, f"{seeds} repeats seed {seed}; every seed must differ")
    return tuple(seeds)
