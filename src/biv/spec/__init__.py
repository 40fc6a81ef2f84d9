"""One typed experiment spec: a config parsed and checked once into frozen dataclasses.

The config keys are documented in config/README.md. Nothing here imports torch.
"""

from biv.spec.errors import ConfigError
from biv.spec.experiment import DatasetSpec, Experiment, Run
from biv.spec.loss import LOSS_PARAMETERS, LossSpec
from biv.spec.model import ModelSpec
from biv.spec.noise import NoiseSpec
from biv.spec.plan import Pack, Plan, build_plan, pack_name
from biv.spec.run import FileRef, RunSpec
from biv.spec.sweeps import Sweep, SweepPoint
from biv.spec.training import TRAINING_DEFAULTS, TrainingSpec

__all__ = [
    "LOSS_PARAMETERS",
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
