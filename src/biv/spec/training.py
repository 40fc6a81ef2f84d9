"""An experiment's ``training`` block: optimisation settings with their defaults (torch-free)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from biv.spec import values as v
from biv.spec.errors import ConfigError, fail

DEVICES = ("auto", "cpu", "cuda")
#: The one place of the training defaults (config/schema.yaml and config/README.md repeat them;
#: tests/test_spec.py keeps the three in step).
TRAINING_DEFAULTS = {
    "lr": 0.001,
    "batch_size": 256,
    "epochs": 20,
    "eval_every": 1,
    "shuffle": True,
    "normalize": True,
    "checkpoint_every": 500,
    "eval_batch_size": 1024,
    "drop_last": False,
    "device": "auto",
    "eval_bf16": False,  # opt-in until measured: the exact float32 path is the default on CUDA
    "cuda_graphs": False,
}
#: Upper bounds that catch typos (e.g. epochs: 10**12) before any job starts.
MAX_EPOCHS = 100_000
MAX_BATCH = 1_000_000


@dataclass(frozen=True)
class TrainingSpec:
    lr: float
    batch_size: int
    epochs: int
    eval_every: int
    shuffle: bool
    normalize: bool
    checkpoint_every: int
    eval_batch_size: int
    drop_last: bool
    device: str
    eval_bf16: bool
    cuda_graphs: bool

    @classmethod
    def from_config(cls, key: str, cfg: object) -> TrainingSpec:
        cfg = v.mapping(key, {} if cfg is None else cfg, TRAINING_DEFAULTS)
        if cfg["device"] not in DEVICES:
            raise fail(f"{key}.device", cfg["device"], f"one of {list(DEVICES)}")
        return cls(
            lr=v.number(f"{key}.lr", cfg["lr"], positive=True),
            batch_size=v.integer(f"{key}.batch_size", cfg["batch_size"], 1, MAX_BATCH),
            epochs=v.integer(f"{key}.epochs", cfg["epochs"], 1, MAX_EPOCHS),
            eval_every=v.integer(f"{key}.eval_every", cfg["eval_every"], 1),
            shuffle=v.boolean(f"{key}.shuffle", cfg["shuffle"]),
            normalize=v.boolean(f"{key}.normalize", cfg["normalize"]),
            checkpoint_every=v.integer(f"{key}.checkpoint_every", cfg["checkpoint_every"], 0),
            eval_batch_size=v.integer(f"{key}.eval_batch_size", cfg["eval_batch_size"], 1),
            drop_last=v.boolean(f"{key}.drop_last", cfg["drop_last"]),
            device=cfg["device"],
            eval_bf16=v.boolean(f"{key}.eval_bf16", cfg["eval_bf16"]),
            cuda_graphs=v.boolean(f"{key}.cuda_graphs", cfg["cuda_graphs"]),
        )

    def to_dict(self) -> dict:
        return asdict(self)

    def steps_per_epoch(self, n_train: int) -> int:
        return n_train // self.batch_size if self.drop_last else -(-n_train // self.batch_size)

    def smallest_batch(self, n_train: int) -> int:
        """Size of an epoch's smallest batch (the last one, unless dropped)."""
        if self.drop_last:
            return self.batch_size
        return n_train - (self.steps_per_epoch(n_train) - 1) * self.batch_size

    def check_batchnorm(self, key: str, n_train: int) -> None:
        """A model with BatchNorm cannot train on a batch of 1 sample (``key``: the batch size)."""
        if self.smallest_batch(n_train) < 2:
            raise ConfigError(
                key,
                f"{self.batch_size} leaves a last batch of 1 sample of the {n_train} training "
                "samples, which BatchNorm cannot train on; choose another batch size or "
                "drop_last: true",
            )
