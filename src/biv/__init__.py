"""Batch Inverse-Variance Weighting (Mai, Khamies, Paull 2021) as a reproducible pipeline.

The package's rooms, lowest first; a room imports only rooms below it (tests/test_layers.py):

* ``atomic``, ``logs``, ``provenance``: file writing, job logs and provenance, used everywhere;
* :mod:`biv.losses`: the loss types, one module each, and their registry (torch-free to import);
* :mod:`biv.config`: the config parsed and checked once into typed, frozen objects (torch-free);
* :mod:`biv.data`, :mod:`biv.noise`: prepared datasets, noise draws;
* :mod:`biv.train`: the training core (a pack of runs in one process, its step, checkpoints);
* :mod:`biv.report`: tables, statistics, figures and the reproduction report;
* :mod:`biv.workflow`: what the Snakemake rules ask of the package (params, run folders, check);
* :mod:`biv.legacy`: the original code's command line; ``cli``: the ``biv`` command.
"""

__version__ = "0.1.0"
