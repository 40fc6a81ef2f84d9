"""A ``losses.<name>`` entry: the loss type and its one parameter, defaults filled (torch-free)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from biv.config import values as v
from biv.config.errors import fail

#: Per type: parameter -> default (REQUIRED: must be given). The one place of these defaults.
LOSS_PARAMETERS: dict[str, dict[str, object]] = {
    "mse": {},
    "iv": {"epsilon": 0.5},
    "biv": {"epsilon": 0.5},
    "biv_adaptive": {"ratio": 0.5},
    "cutoff": {"threshold": v.REQUIRED},
}


@dataclass(frozen=True)
class LossSpec:
    type: str
    epsilon: float | None = None
    ratio: float | None = None
    threshold: float | None = None

    @classmethod
    def from_config(cls, key: str, cfg: object) -> LossSpec:
        kind = cfg.get("type") if isinstance(cfg, dict) else None
        if kind not in LOSS_PARAMETERS:
            if not isinstance(cfg, dict):
                raise fail(key, cfg, f"a mapping with a type (one of {list(LOSS_PARAMETERS)})")
            raise fail(f"{key}.type", kind, f"one of {list(LOSS_PARAMETERS)}")
        cfg = v.mapping(key, cfg, {"type": v.REQUIRED, **LOSS_PARAMETERS[kind]})
        if kind in ("iv", "biv"):
            return cls(kind, epsilon=v.number(f"{key}.epsilon", cfg["epsilon"], minimum=0))
        if kind == "biv_adaptive":
            ratio = cfg["ratio"]
            if not v.is_number(ratio) or not 0 < ratio <= 1:
                raise fail(f"{key}.ratio", ratio, "a number in (0, 1]")
            return cls(kind, ratio=float(ratio))
        if kind == "cutoff":
            threshold = cfg["threshold"]
            ok = isinstance(threshold, int | float) and not isinstance(threshold, bool)
            if not ok or math.isnan(threshold) or threshold <= 0:
                raise fail(f"{key}.threshold", threshold, "a number > 0 (raw label units^2)")
            return cls(kind, threshold=float(threshold))
        return cls(kind)

    def to_dict(self) -> dict:
        return {"type": self.type} | {k: getattr(self, k) for k in LOSS_PARAMETERS[self.type]}
