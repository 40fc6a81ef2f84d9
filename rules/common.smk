import os

from snakemake.utils import validate

from biv import io
from biv import workflow as wf

validate(config, schema="../config/schema.yaml")

PLAN = wf.build_plan(config)


wildcard_constraints:
    dataset=r"[A-Za-z0-9_-]+",
    noise=r"[A-Za-z0-9_-]+",
    experiment=r"[A-Za-z0-9_-]+",
    loss=r"[A-Za-z0-9_-]+",
    seed=r"\d+",
    figure=r"[A-Za-z0-9_-]+",
    sweep=r"[A-Za-z0-9_-]+",


def run_files(name, runs=PLAN.runs):
    return [f"{wf.run_dir(r.experiment, r.loss, r.seed)}/{name}" for r in runs]


def experiment_noise_file(wildcards):
    exp = PLAN.experiments[wildcards.experiment]
    if exp["noise"] is None:
        return []
    return wf.noise_file(exp["dataset"], exp["noise"], wildcards.seed)


def all_targets():
    targets = [
        "results/tables/runs.csv",
        "results/tables/summary.csv",
        "results/tables/benchmarks.csv",
        "results/provenance.json",
    ]
    targets += expand("results/figures/{figure}.png", figure=PLAN.figures)
    targets += expand("results/figures/sweeps/{sweep}.png", sweep=PLAN.sweeps)
    if "reproduction" in config:
        targets.append("results/reproduction.md")
    return targets


def figure_metrics(figure):
    shown = wf.figure_experiments(PLAN.figures[figure])
    return run_files("metrics.csv", [r for r in PLAN.runs if r.experiment in shown])


def benchmark_files():
    files = [f"results/benchmarks/prepare_dataset/{d}.tsv" for d in used_datasets()]
    files += [
        f"results/benchmarks/generate_noise/{d}/{n}/seed{s}.tsv"
        for d, n, s in PLAN.noise_draws()
    ]
    files += [f"results/benchmarks/estimate_noise_params/{n}.tsv" for n in used_noise()]
    files += [
        f"results/benchmarks/train/{r.experiment}/{r.loss}/seed{r.seed}.tsv"
        for r in PLAN.runs
    ]
    files += [
        "results/benchmarks/aggregate/all.tsv",
        "results/benchmarks/provenance/all.tsv",
    ]
    files += [f"results/benchmarks/plot_learning_curves/{f}.tsv" for f in PLAN.figures]
    files += [f"results/benchmarks/plot_sweep/{s}.tsv" for s in PLAN.sweeps]
    if "reproduction" in config:
        files.append("results/benchmarks/reproduction/all.tsv")
    return files


def used_datasets():
    return sorted({exp["dataset"] for exp in PLAN.experiments.values()})


def used_noise():
    return sorted({n for _, n, _ in PLAN.noise_draws()})
