"""What the Snakemake workflow asks of the package: each rule's parameters and resources
(:mod:`biv.workflow.rule_params`), where a run's files lie in its pack's output folder
(:mod:`biv.workflow.run_folders`) and ``biv check`` (:mod:`biv.workflow.check`).

Torch-free (the submit host plans with it); imports :mod:`biv.config`, :mod:`biv.data` and
:mod:`biv.report` (names only), never :mod:`biv.train`.
"""
