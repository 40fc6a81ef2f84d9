"""One typed experiment spec: a config parsed and checked once into frozen dataclasses.

The config keys are documented in config/README.md. Nothing here imports torch.
"""

from biv.config.errors import ConfigError
from biv.config.experiment import DatasetSpec, Experiment, Run
from biv.config.loss import LossSpec
from biv.config.model import ModelSpec
from biv.config.noise import NoiseSpec
from biv.config.plan import Pack, Plan, build_plan, pack_name
from biv.config.run import FileRef, RunSpec
from biv.config.sweeps import Sweep, SweepPoint
from biv.config.training import TRAINING_DEFAULTS, TrainingSpec

__all__ = [
    "TRAINING_DEFAULTS",
    "ConfigError",
    "DatasetSpec",
    "Experiment",
    "FileRef",
    "LossSpec",
    "ModelSpec",
    "NoiseSpec",
    "Pack",
    "Plan",
    "Run",
    "RunSpec",
    "Sweep",
    "SweepPoint",
    "TrainingSpec",
    "build_plan",
    "pack_name",
]
