"""The training core: a pack of runs trained in one process (:mod:`biv.train.loop`), its step
(:mod:`biv.train.step`), the pack model and Adam, the data of a run on the device, evaluation,
metrics, checkpoints and device choice.

Imports :mod:`biv.config`, :mod:`biv.data`, :mod:`biv.noise`, :mod:`biv.losses` and the base
modules, never :mod:`biv.report` or :mod:`biv.workflow`. This ``__init__`` imports nothing, so
that ``import biv.train.devices`` does not start torch's training stack.
"""
