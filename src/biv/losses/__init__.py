"""Mini-batch regression losses, one module per loss type, found by scanning this package.

For a batch of K samples with prediction f, noisy label y~ and known label-noise variance
sigma^2 (normalized label units), e = f - y~ and w = 1 / (sigma^2 + epsilon):

* ``mse``:          (1/K) sum e^2
* ``iv``:           (1/K) sum w e^2   (the paper's IV baseline: BIV without normalization)
* ``biv``:          sum w e^2 / sum w
* ``biv_adaptive``: BIV with the smallest epsilon >= 0 whose effective batch size
  (sum w)^2 / sum w^2 reaches ratio * K
* ``cutoff``:       mean of e^2 over S = {k : sigma^2 < C}; ``None`` when S is empty

A loss type is a module of this package (modules named ``_...`` are not) that declares
``LOSS = LossType(name=<the module's name>, description, parameters, compute, ...)``: its
parameters as JSON-schema fragments (the one place of their types, ranges and defaults) and
what the training loop does for it (:class:`LossType`). Adding a loss type is adding a module;
:func:`registered` finds it, :func:`loss_schema` validates it in configs, ``biv.config.LossSpec``
parses it and the training step calls its ``compute``.

Every loss function (``<module>.loss``) accepts tensors of shape (K,) or (K, 1) (each argument
independently; they are flattened, never broadcast against each other) and rejects negative or
non-finite variances. Those checks read values back from the device. A training loop validates
sigma^2 once (:meth:`LossType.check_variances`), decides which batches a loss skips on the CPU
(:attr:`LossType.kept`) and calls the losses inside :class:`trusted_variances`, where they skip
the checks and never wait for the device. Importing this package does not import torch.
"""

from __future__ import annotations

import copy
import functools
import importlib
import pkgutil

from biv.losses._core import LossResult, LossType, ParameterError, trusted_variances

__all__ = [
    "LossResult",
    "LossType",
    "ParameterError",
    "loss_schema",
    "loss_type",
    "registered",
    "trusted_variances",
]


@functools.cache
def registered() -> dict[str, LossType]:
    """Every loss type, by name in alphabetical order: the ``LOSS`` of each public module of
    this package."""
    types = {}
    for module in pkgutil.iter_modules(__path__):
        if module.name.startswith("_"):
            continue
        loss = getattr(importlib.import_module(f"{__name__}.{module.name}"), "LOSS", None)
        if not isinstance(loss, LossType) or loss.name != module.name:
            raise TypeError(
                f"{__name__}.{module.name} must declare LOSS = LossType(name={module.name!r}, ...)"
            )
        types[loss.name] = loss
    return dict(sorted(types.items()))


def loss_type(name: str) -> LossType:
    """The registered loss type ``name``; ValueError listing the registered ones."""
    types = registered()
    if name not in types:
        raise ValueError(f"unknown loss type {name!r}; registered: {', '.join(types)}")
    return types[name]


def loss_schema() -> dict:
    """The JSON schema of one ``losses.<name>`` entry of a config, from the registered types:
    ``type`` is required and one of them; the other keys are that type's parameters, their
    defaults filled by a validator that fills defaults (Snakemake's). Each type's branch
    applies only where ``type`` is present (``required`` in its ``if``), so that a missing
    ``type`` is the error reported, not a parameter of whichever type passes vacuously."""
    types = registered()
    described = "; ".join(f"{name}: {kind.description}" for name, kind in types.items())
    branches = [
        {
            "if": {"required": ["type"], "properties": {"type": {"const": name}}},
            "then": {
                # "type": {} (not true: Snakemake's default filling reads every subschema)
                "properties": {"type": {}, **copy.deepcopy(dict(kind.parameters))},
                "required": [p for p, f in kind.parameters.items() if "default" not in f],
                "additionalProperties": False,
            },
        }
        for name, kind in types.items()
    ]
    return {
        "type": "object",
        "description": "A training loss: `type` and that type's parameters.",
        "required": ["type"],
        "properties": {
            "type": {
                "description": described,
                "enum": list(types),
            }
        },
        "allOf": branches,
    }
