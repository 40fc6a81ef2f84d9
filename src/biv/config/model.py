"""A ``models.<name>`` entry: which network, and the MLP's widths (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass

from biv.config import values as v
from biv.config.errors import ConfigError, fail

MODEL_NAMES = ("mlp", "cnn", "resnet18")
MLP_DEFAULTS = {"hidden": [100, 50, 20, 10], "batchnorm": False}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    hidden: tuple[int, ...] = ()
    batchnorm: bool = False

    @classmethod
    def from_config(cls, key: str, cfg: object) -> ModelSpec:
        if not isinstance(cfg, dict):
            raise fail(key, cfg, f"a mapping with a name (one of {list(MODEL_NAMES)})")
        name = cfg.get("name")
        if name not in MODEL_NAMES:
            raise fail(f"{key}.name", name, f"one of {list(MODEL_NAMES)}")
        if name != "mlp":
            v.mapping(key, cfg, {"name": v.REQUIRED})
            return cls(name)
        cfg = v.mapping(key, cfg, {"name": v.REQUIRED, **MLP_DEFAULTS})
        hidden = cfg["hidden"]
        if not isinstance(hidden, list | tuple) or not hidden:
            raise fail(f"{key}.hidden", hidden, "a non-empty list of positive integers")
        for i, width in enumerate(hidden):
            v.integer(f"{key}.hidden[{i}]", width, 1)
        return cls("mlp", tuple(hidden), v.boolean(f"{key}.batchnorm", cfg["batchnorm"]))

    def to_dict(self) -> dict:
        if self.name != "mlp":
            return {"name": self.name}
        return {"name": "mlp", "hidden": list(self.hidden), "batchnorm": self.batchnorm}

    @property
    def has_batchnorm(self) -> bool:
        """Whether it normalises over the batch in training mode (needs batches of >= 2)."""
        return self.name != "mlp" or self.batchnorm


def check_input(key: str, model: ModelSpec, sample_shape: tuple[int, ...]) -> None:
    """The model must fit the dataset's samples: (F,) features or (3, H, W) images."""
    if model.name == "mlp":
        if len(sample_shape) != 1:
            raise ConfigError(key, f"'mlp' needs tabular inputs, got samples {sample_shape}")
        return
    if len(sample_shape) != 3 or sample_shape[0] != 3:
        got = "tabular features" if len(sample_shape) == 1 else f"samples {sample_shape}"
        raise ConfigError(key, f"{model.name!r} needs RGB images (3, H, W), got {got}")
    if model.name == "cnn" and min(sample_shape[1:]) < 64:
        raise ConfigError(
            key, f"'cnn' needs images of at least 64x64 pixels, got {sample_shape[1:]}"
        )
