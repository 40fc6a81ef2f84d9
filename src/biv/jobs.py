"""What each job of the workflow gets from the plan: its run parameters, inputs, group and GPU
request, and what the tables and captions need to know (torch-free). Paths belong to the rules.

The plan itself is :mod:`biv.spec`; the config keys are documented in config/README.md.
"""

from __future__ import annotations

from biv.spec import ConfigError, FileRef, Plan, RunSpec, build_plan
from biv.spec.dataset import TableConfig, expand_text

__all__ = ["ConfigError", "build_plan"]


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
        dataset=FileRef(exp.dataset, dataset_file),
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


def test_metrics(plan: Plan, experiments) -> set[str]:
    """The scored test metric of each of ``experiments`` (biv.aggregate.TEST_METRICS): ``mse``
    on clean test labels, ``clean_mse_est`` on noisy ones with known variances."""
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
