"""What the Snakemake workflow asks of the package: each rule's parameters and resources
(:mod:`biv.workflow.rule_params`), run folders linked from a pack's output
(:mod:`biv.workflow.run_folders`) and ``biv check`` (:mod:`biv.workflow.check`).

Torch-free (the submit host plans with it); imports :mod:`biv.config`, :mod:`biv.data` and
:mod:`biv.report` (names only), never :mod:`biv.train`.
"""
