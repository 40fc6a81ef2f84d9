import os
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")

# The workflow's own code is the package in src/, never an installed copy: first on the path
# of this process (rules/common.smk imports it) and on the PYTHONPATH of every job (local,
# conda, container; Slurm jobs inherit it and re-run this file; envvars: passes it on where an
# executor passes variables itself). The conda env and the container hold dependencies only.
SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
os.environ["PYTHONPATH"] = os.pathsep.join(
    filter(None, [SRC, os.environ.get("PYTHONPATH")])
)


envvars:
    "PYTHONPATH",


# Used with --software-deployment-method apptainer only: the image built from
# containers/biv.def (profiles/slurm/README.md, "Software on the cluster"), relative to the
# working directory (Snakemake refuses an image path with a space even when unused).
container: "containers/biv.sif"


# The embedded demo, unless --configfile names another config (which then replaces it
# instead of being merged into it); found beside this file, whatever the working directory.
if not workflow.overwrite_configfiles:

    configfile: os.path.join(workflow.basedir, "config", "config.yaml")


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/noise.smk"
include: "rules/train.smk"
include: "rules/tables.smk"
include: "rules/figures.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        all_targets(),
