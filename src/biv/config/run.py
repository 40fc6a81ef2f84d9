"""The parameters of one training run: the serialized spec that ``biv train`` reads."""

from __future__ import annotations

from dataclasses import dataclass

from biv.config import values as v
from biv.config.errors import ConfigError
from biv.config.loss import LossSpec
from biv.config.model import ModelSpec
from biv.config.training import TrainingSpec


@dataclass(frozen=True)
class FileRef:
    """A named input file of a run: a prepared dataset, or a resolved noise setting (the run
    draws its noisy labels from it with its seed)."""

    name: str
    file: str

    @classmethod
    def from_config(cls, key: str, cfg: object) -> FileRef:
        cfg = v.mapping(key, cfg, {"name": v.REQUIRED, "file": v.REQUIRED})
        return cls(v.text(f"{key}.name", cfg["name"]), v.text(f"{key}.file", cfg["file"]))


@dataclass(frozen=True)
class RunSpec:
    """One (experiment, loss, seed): what ``biv train`` needs, and nothing else."""

    experiment: str
    loss_name: str
    seed: int
    dataset: FileRef
    noise: FileRef | None
    loss: LossSpec
    model: ModelSpec
    training: TrainingSpec

    @classmethod
    def from_dict(cls, params: object) -> RunSpec:
        """Parse run parameters (e.g. a params.json); ConfigError names the key."""
        fields = {k: v.REQUIRED for k in cls.__dataclass_fields__}
        p = v.mapping("", params, fields)
        return cls(
            experiment=v.text("experiment", p["experiment"]),
            loss_name=v.text("loss_name", p["loss_name"]),
            seed=v.integer("seed", p["seed"], 0, v.MAX_SEED),
            dataset=FileRef.from_config("dataset", p["dataset"]),
            noise=None if p["noise"] is None else FileRef.from_config("noise", p["noise"]),
            loss=LossSpec.from_config("loss", p["loss"]),
            model=ModelSpec.from_config("model", p["model"]),
            training=TrainingSpec.from_config("training", p["training"]),
        )

    def to_dict(self) -> dict:
        return {
            "experiment": self.experiment,
            "loss_name": self.loss_name,
            "seed": self.seed,
            "dataset": {"name": self.dataset.name, "file": self.dataset.file},
            "noise": None
            if self.noise is None
            else {"name": self.noise.name, "file": self.noise.file},
            "loss": self.loss.to_dict(),
            "model": self.model.to_dict(),
            "training": self.training.to_dict(),
        }


__all__ = ["ConfigError", "FileRef", "RunSpec"]
