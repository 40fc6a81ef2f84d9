"""An experiment's ``training`` block: optimisation settings with their defaults (torch-free)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from biv.config import values as v
from biv.config.errors import ConfigError, fail

DEVICES = ("auto", "cpu", "cuda")
#: How the clean test set is evaluated (``biv.train.evaluation``): ``standard`` is eval mode
#: (BatchNorm with its running statistics) and the MSE over all test samples; ``original`` is
#: the original code's: BatchNorm normalised by each test batch's own statistics (running statistics
#: neither read nor updated), batches of ``eval_batch_size`` in test-set order, the mean of the
#: per-batch MSEs.
EVAL_PROTOCOLS = ("standard", "original")
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
    "eval_protocol": "standard",
    "drop_last": False,
    "device": "auto",
    "eval_bf16": False,  # opt-in until measured: the exact float32 path is the default on CUDA
    "cuda_graphs": False,
    "pack_size": 5,
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
    eval_protocol: str
    drop_last: bool
    device: str
    eval_bf16: bool
    cuda_graphs: bool
    pack_size: int  # seeds per training job of the workflow (biv.config.plan.Pack)

    @classmethod
    def from_config(cls, key: str, cfg: object) -> TrainingSpec:
        cfg = v.mapping(key, {} if cfg is None else cfg, TRAINING_DEFAULTS)
        if cfg["device"] not in DEVICES:
            raise fail(f"{key}.device", cfg["device"], f"one of {list(DEVICES)}")
        if cfg["eval_protocol"] not in EVAL_PROTOCOLS:
            raise fail(
                f"{key}.eval_protocol", cfg["eval_protocol"], f"one of {list(EVAL_PROTOCOLS)}"
            )
        return cls(
            lr=v.number(f"{key}.lr", cfg["lr"], positive=True),
            batch_size=v.integer(f"{key}.batch_size", cfg["batch_size"], 1, MAX_BATCH),
            epochs=v.integer(f"{key}.epochs", cfg["epochs"], 1, MAX_EPOCHS),
            eval_every=v.integer(f"{key}.eval_every", cfg["eval_every"], 1),
            shuffle=v.boolean(f"{key}.shuffle", cfg["shuffle"]),
            normalize=v.boolean(f"{key}.normalize", cfg["normalize"]),
            checkpoint_every=v.integer(f"{key}.checkpoint_every", cfg["checkpoint_every"], 0),
            eval_batch_size=v.integer(f"{key}.eval_batch_size", cfg["eval_batch_size"], 1),
            eval_protocol=cfg["eval_protocol"],
            drop_last=v.boolean(f"{key}.drop_last", cfg["drop_last"]),
            device=cfg["device"],
            eval_bf16=v.boolean(f"{key}.eval_bf16", cfg["eval_bf16"]),
            cuda_graphs=v.boolean(f"{key}.cuda_graphs", cfg["cuda_graphs"]),
            pack_size=v.integer(f"{key}.pack_size", cfg["pack_size"], 1),
        )

    def to_dict(self) -> dict:
        return asdict(self)

    def eval_text(self) -> str:
        """The evaluation protocol in words (run.json, figure captions)."""
        if self.eval_protocol == "standard":
            return (
                "standard: eval mode (BatchNorm with its running statistics), MSE over all test "
                "samples"
            )
        return (
            "original: as the original code, BatchNorm normalised by each test batch's own "
            f"statistics (running statistics untouched), test batches of {self.eval_batch_size} "
            "in test-set order, the mean of the per-batch MSEs"
        )

    def test_batch_of_one(self, n_test: int) -> bool:
        """Whether the original protocol's last test batch holds 1 sample (BatchNorm cannot
        normalise it by its own statistics)."""
        return self.eval_protocol == "original" and n_test % self.eval_batch_size == 1

    def steps_per_epoch(self, n_train: int) -> int:
        return n_train // self.batch_size if self.drop_last else -(-n_train // self.batch_size)

    def smallest_batch(self, n_train: int) -> int:
        """Size of an epoch's smallest batch (the last one, unless dropped)."""
        if self.drop_last:
            return self.batch_size
        return n_train - (self.steps_per_epoch(n_train) - 1) * self.batch_size

    def check_batchnorm(self, keys: tuple[str, str], n_train: int, n_test: int) -> None:
        """A model with BatchNorm cannot train on a batch of 1 sample, nor evaluate one with the
        original protocol (``keys``: where batch_size and eval_batch_size are written)."""
        if self.smallest_batch(n_train) < 2:
            raise ConfigError(
                keys[0],
                f"{self.batch_size} leaves a last batch of 1 sample of the {n_train} training "
                "samples, which BatchNorm cannot train on; choose another batch size or "
                "drop_last: true",
            )
        if self.test_batch_of_one(n_test):
            raise ConfigError(
                keys[1],
                f"{self.eval_batch_size} leaves a last test batch of 1 sample of the {n_test} "
                "test samples, which BatchNorm cannot normalise with eval_protocol: original; "
                "choose another eval_batch_size",
            )
