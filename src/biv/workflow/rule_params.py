"""What each job of the workflow gets from the plan: its run parameters, inputs, group and GPU
request, and what the tables and captions need to know (torch-free). Paths belong to the rules.

The plan itself is :func:`biv.workflow.plan.load_plan`; the config keys are documented in
config/README.md.
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

from biv.config import FileRef, Plan, RunSpec
from biv.config.dataset import TableConfig, UCIConfig, expand_text
from biv.data.sources import archive_name


def run_spec(
    plan: Plan,
    experiment: str,
    loss: str,
    seed: int,
    dataset_file: str,
    noise_file: str | None,
) -> RunSpec:
    """The parameters ``biv train`` runs for one (experiment, loss, seed), reading the given
    prepared dataset and noise draw (the train rule's inputs)."""
    exp = plan.experiments[experiment]
    if (exp.noise is None) != (noise_file is None):
        raise ValueError(f"{experiment}: noise file {noise_file!r} for noise {exp.noise!r}")
    noise = None if exp.noise is None else FileRef(exp.noise, noise_file)
    return RunSpec(
        experiment=experiment,
        loss_name=loss,
        seed=int(seed),
        dataset=FileRef(plan.dataset_of(experiment, seed), dataset_file),
        noise=noise,
        loss=exp.losses[loss],
        model=exp.model,
        training=exp.training,
    )


def dataset_inputs(plan: Plan, dataset: str) -> list[str]:
    """Input files of preparing ``dataset``: a table's file (so that editing it reruns the
    preparation); none for the other kinds, whose files are checked by sha256."""
    cfg = plan.datasets[dataset].config
    if not isinstance(cfg, TableConfig):
        return []
    return [expand_text(cfg.path)]  # as written: a normalised path would be a changed input


def downloads(plan: Plan) -> dict[str, dict[str, dict]]:
    """The publisher zips the workflow downloads, one job each on the submit host: zip file
    name (:func:`biv.data.sources.archive_name`) -> the datasets entries read from it (those
    with a ``url`` and no ``path``; of one split per run, each run's split)."""
    found: dict[str, dict[str, dict]] = {}
    for name in sorted(plan.datasets):  # one order: a stable param of the download job
        cfg = plan.datasets[name].config
        if isinstance(cfg, UCIConfig) and cfg.path is None and not cfg.split_per_run:
            found.setdefault(archive_name(cfg.url), {})[name] = cfg.to_dict()
    return found


def dataset_downloads(plan: Plan, dataset: str) -> list[str]:
    """The zips (:func:`downloads`) that preparing ``dataset`` reads."""
    return [zip_name for zip_name, users in downloads(plan).items() if dataset in users]


def prepare_runtime(plan: Plan, dataset: str) -> int:
    """Minutes to ask for preparing ``dataset``: UTKFace decodes each image (its 23,708 at
    200x200 took under a minute on 2 cores), a table is read at once (a minute or two)."""
    data = plan.datasets[dataset]
    return 5 + math.ceil((data.n_train + data.n_test) / 4000) if data.images else 2


def prepare_mem_mb(plan: Plan, dataset: str, input_mb: float) -> int:
    """Memory to ask for preparing ``dataset``: four times its images as uint8 arrays, or
    twenty times its table file (``input_mb``, 0 for a download: the UCI tables are small)."""
    data = plan.datasets[dataset]
    if data.images:
        side = data.config.image_side
        return 1000 + math.ceil(4 * (data.n_train + data.n_test) * 3 * side * side / 2**20)
    return 2000 + math.ceil(20 * input_mb)


def experiment_table(plan: Plan) -> dict[str, dict]:
    """What the tables need to know of each experiment beyond its run files."""
    return {
        name: {
            "dataset": exp.dataset,
            "noise": exp.noise,
            "model": exp.model.name,
            "baseline": exp.baseline,
            "sweep": exp.sweep,
            "sweep_values": exp.sweep_values,
        }
        for name, exp in plan.experiments.items()
    }


def train_gpus(plan: Plan, experiment: str) -> int:
    """GPUs a training job asks for: none where the experiment trains on the CPU
    (``training.device: cpu``), else one (``cuda``, and ``auto`` on a cluster's GPU node)."""
    return 0 if plan.experiments[experiment].training.device == "cpu" else 1


def experiments_pattern(plan: Plan, gpu: bool) -> str:
    """A regular expression of the experiments that train on a GPU (``gpu``) or on the CPU
    (:func:`train_gpus`): the wildcard constraint that sends each pack to rule ``train`` or
    ``train_cpu``; one that matches nothing where there are none."""
    names = [name for name in plan.experiments if train_gpus(plan, name) == int(gpu)]
    return "|".join(re.escape(name) for name in names) or "(?!)"


def test_metrics(plan: Plan, experiments) -> set[str]:
    """The scored test metric of each of ``experiments`` (biv.report.tables.TEST_METRICS):
    ``mse`` on clean test labels, ``clean_mse_est`` on noisy ones with known variances."""
    return {
        "mse" if plan.datasets[plan.experiments[e].dataset].clean_test_labels else "clean_mse_est"
        for e in experiments
    }


def train_group(plan: Plan, experiment: str) -> str | None:
    """Job group of a training run: the small MLP runs form group ``train-mlp`` (on a GPU) or
    ``train-cpu`` (``training.device: cpu``), which a cluster profile packs several to a job
    (``group-components``); image models stay alone."""
    exp = plan.experiments[experiment]
    if exp.model.name != "mlp":
        return None
    return "train-cpu" if train_gpus(plan, experiment) == 0 else "train-mlp"


def package_digest() -> str:
    """A digest of the biv package's source (every .py and .yaml file under it, by path and
    content): a param of the jobs that only compute from the trainings' files (tables, figures),
    so that a change of the code they run reruns them, as a change of their script does."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".yaml")):
        digest.update(file.relative_to(root).as_posix().encode() + b"\0")
        digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
