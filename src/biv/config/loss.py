"""A ``losses.<name>`` entry: a loss type registered in :mod:`biv.losses` and its parameters,
checked against that type's declaration, defaults filled (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from biv.config import values as v
from biv.config.errors import ConfigError, fail
from biv.losses import LossType, ParameterError, registered


@dataclass(frozen=True)
class LossSpec:
    """``type``: a registered loss type's name; ``params``: its parameters, in declared order."""

    type: str
    params: dict[str, Any] = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash((self.type, tuple(self.params.items())))

    @property
    def kind(self) -> LossType:
        """The registered loss type: its computation and what the training loop does for it."""
        return registered()[self.type]

    @classmethod
    def from_config(cls, key: str, cfg: object) -> LossSpec:
        types = list(registered())
        if not isinstance(cfg, dict):
            raise fail(key, cfg, f"a mapping with a type (one of {types})")
        if "type" not in cfg:
            raise ConfigError(f"{key}.type", f"missing (required); one of {types}")
        if cfg["type"] not in types:
            raise fail(f"{key}.type", cfg["type"], f"one of {types}")
        kind = registered()[cfg["type"]]
        fields = {name: f.get("default", v.REQUIRED) for name, f in kind.parameters.items()}
        cfg = v.mapping(key, cfg, {"type": v.REQUIRED, **fields})
        try:
            return cls(kind.name, kind.parse(cfg))
        except ParameterError as err:
            raise ConfigError(f"{key}.{err.name}", err.problem) from None

    def to_dict(self) -> dict:
        return {"type": self.type, **self.params}

    def in_model_units(self, y_std: float) -> LossSpec:
        """The loss for labels normalized by ``y_std``: its parameters in raw label units
        squared (``LossType.raw_units``: a cutoff threshold) divided by y_std**2."""
        raw = self.kind.raw_units
        return replace(
            self, params={k: x / y_std**2 if k in raw else x for k, x in self.params.items()}
        )
