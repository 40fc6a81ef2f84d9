from snakemake.utils import validate

from biv import workflow as wf

validate(config, schema="../config/schema.yaml")

try:
    PLAN = wf.build_plan(config)
except wf.ConfigError as err:
    raise wf.ConfigError(err.key, f"{err.problem} (biv check CONFIG checks a config file)")


wildcard_constraints:
    dataset=r"[A-Za-z0-9_-]+",
    noise=r"[A-Za-z0-9_-]+",
    experiment=r"[A-Za-z0-9_-]+",
    loss=r"[A-Za-z0-9_-]+",
    seed=r"\d+",
    figure=r"[A-Za-z0-9_-]+",
    sweep=r"[A-Za-z0-9_-]+",


def run_files(name, runs=PLAN.runs):
    """One output (e.g. "summary") of the train rule for each run."""
    return expand(
        getattr(rules.train.output, name),
        zip,
        experiment=[r.experiment for r in runs],
        loss=[r.loss for r in runs],
        seed=[r.seed for r in runs],
    )


def dataset_config(wildcards):
    return PLAN.datasets[wildcards.dataset].config


def noise_record(wildcards):
    return PLAN.noise[wildcards.noise].record


def train_dataset_file(wildcards):
    dataset = PLAN.experiments[wildcards.experiment].dataset
    return expand(rules.prepare_dataset.output[0], dataset=dataset)[0]


def train_noise_file(wildcards):
    exp = PLAN.experiments[wildcards.experiment]
    if exp.noise is None:
        return []
    return expand(
        rules.generate_noise.output[0],
        dataset=exp.dataset,
        noise=exp.noise,
        seed=wildcards.seed,
    )[0]


def run_parameters(wildcards):
    """The run's spec, with its input files. Not a function of `input`: Snakemake's params
    rerun trigger ignores such derived params."""
    run = wf.run_spec(
        PLAN,
        wildcards.experiment,
        wildcards.loss,
        int(wildcards.seed),
        dataset_file=train_dataset_file(wildcards),
        noise_file=train_noise_file(wildcards) or None,
    )
    return run.to_dict()


def train_group(wildcards):
    return wf.train_group(PLAN, wildcards.experiment)


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


def figure_metrics(wildcards):
    shown = wf.figure_experiments(PLAN.figures[wildcards.figure])
    return run_files("metrics", [r for r in PLAN.runs if r.experiment in shown])


def figure_config(wildcards):
    return PLAN.figures[wildcards.figure]


def sweep_config(wildcards):
    return PLAN.sweeps[wildcards.sweep].as_dict()


def benchmark_files():
    files = [f"results/benchmarks/prepare_dataset/{d}.tsv" for d in used_datasets()]
    files += [
        f"results/benchmarks/generate_noise/{d}/{n}/seed{s}.tsv"
        for d, n, s in PLAN.noise_draws()
    ]
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
    return sorted({exp.dataset for exp in PLAN.experiments.values()})
