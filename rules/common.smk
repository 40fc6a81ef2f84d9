import os

from biv.config import ConfigError
from biv.config.naming import normal
from biv.config.validation import validated
from biv.report import figure_text
from biv.workflow import rule_params
from biv.workflow.run_folders import member_file
from biv.workflow.plan import checked_plan

try:
    # the schema's defaults filled in, as the rules read them; then the plan and its data
    # checked as `biv check` checks a config (biv.workflow.plan.load_plan: these two steps)
    config.update(validated(config))
    PLAN = checked_plan(config)
except ConfigError as err:
    raise ConfigError(err.key, f"{err.problem} (biv check CONFIG checks a config file)")


# A param of the jobs that compute from the trainings' files (tables, figures): a change of the
# package's code reruns them, as a change of their script would; trainings rerun only on their own
# parameters and inputs.
PACKAGE_CODE = rule_params.package_digest()


# Packs of experiments that train on a GPU go to rule train, the others to train_cpu.
GPU_EXPERIMENTS = rule_params.experiments_pattern(PLAN, gpu=True)
CPU_EXPERIMENTS = rule_params.experiments_pattern(PLAN, gpu=False)


wildcard_constraints:
    dataset=r"[A-Za-z0-9_-]+",
    archive=r"[A-Za-z0-9+._-]+\.zip",
    noise=r"[A-Za-z0-9_-]+",
    experiment=r"[A-Za-z0-9_-]+",
    loss=r"[A-Za-z0-9_-]+",
    seed=r"\d+",
    pack=r"seeds-?\d+-\d+",
    figure=r"[A-Za-z0-9_-]+",
    sweep=r"[A-Za-z0-9_-]+",


def run_files(name, runs=PLAN.runs):
    """One file of each run (a key of RUN_FILES, e.g. "summary"): in the run's folder in the
    output folder of its pack's train job."""
    folders = expand(
        rules.train.output.runs,
        zip,
        experiment=[r.experiment for r in runs],
        loss=[r.loss_name for r in runs],
        pack=[PLAN.pack_of(r) for r in runs],
    )
    return [member_file(folder, r.seed, name) for folder, r in zip(folders, runs)]


def run_ids(runs=PLAN.runs):
    """What each run of run_files is: [experiment, loss, seed] (no script parses a path)."""
    return [[r.experiment, r.loss_name, r.seed] for r in runs]


def pack_files(pattern, packs=PLAN.packs.values()):
    """``pattern`` (an output or the benchmark of the train rule) for each pack."""
    return expand(
        pattern,
        zip,
        experiment=[p.experiment for p in packs],
        loss=[p.loss_name for p in packs],
        pack=[p.name for p in packs],
    )


def dataset_config(wildcards):
    return PLAN.datasets[wildcards.dataset].config.to_dict()


def dataset_inputs(wildcards):
    zips = rule_params.dataset_downloads(PLAN, wildcards.dataset)
    downloads = expand(rules.download.output[0], archive=zips)
    return [
        *rule_params.dataset_inputs(PLAN, wildcards.dataset),
        *map(ancient, downloads),
    ]


def prepare_runtime(wildcards, attempt):
    return rule_params.prepare_runtime(PLAN, wildcards.dataset) * attempt


def prepare_mem_mb(wildcards, input):
    return rule_params.prepare_mem_mb(PLAN, wildcards.dataset, input.size_mb)


def download_datasets(wildcards):
    return rule_params.downloads(PLAN)[wildcards.archive]


def noise_record(wildcards):
    return PLAN.noise[wildcards.noise].to_dict()


def noise_draws(pack):
    """The noise-draw file the runs of ``pack`` read their noisy labels from, or None (clean
    labels)."""
    noise = PLAN.experiments[pack.experiment].noise
    if noise is None:
        return None
    (draws,) = expand(
        rules.draw_noise.output.draws,
        dataset=pack.dataset,
        noise=noise,
        block=pack.name,
    )
    return draws


def noise_draw_files(wildcards):
    """The draw files of one (dataset, noise), every seed block."""
    blocks = [
        b
        for d, n, b in PLAN.noise_draws
        if (d, n) == (wildcards.dataset, wildcards.noise)
    ]
    return expand(
        rules.draw_noise.output.draws,
        dataset=wildcards.dataset,
        noise=wildcards.noise,
        block=blocks,
    )


def draw_seeds(wildcards):
    return PLAN.noise_draws[wildcards.dataset, wildcards.noise, wildcards.block]


def draw_files(output):
    """``output`` (a path of rule draw_noise) of every noise-draw file."""
    keys = list(PLAN.noise_draws)
    return expand(
        output,
        zip,
        dataset=[d for d, _, _ in keys],
        noise=[n for _, n, _ in keys],
        block=[b for _, _, b in keys],
    )


def train_pack(wildcards):
    return PLAN.packs[wildcards.experiment, wildcards.loss, wildcards.pack]


def train_dataset_file(wildcards):
    dataset = train_pack(wildcards).dataset
    return expand(rules.prepare_dataset.output.data, dataset=dataset)[0]


def train_noise_draws(wildcards):
    draws = noise_draws(train_pack(wildcards))
    return [] if draws is None else [draws]


def pack_parameters(wildcards):
    """The members' run specs, with their input files. Not a function of `input`: Snakemake's
    params rerun trigger ignores such derived params."""
    dataset_file = train_dataset_file(wildcards)
    noise_file = noise_draws(train_pack(wildcards))
    return [
        rule_params.run_spec(
            PLAN,
            wildcards.experiment,
            wildcards.loss,
            seed,
            dataset_file=dataset_file,
            noise_file=noise_file,
        ).to_dict()
        for seed in train_pack(wildcards).seeds
    ]


def train_group(wildcards):
    return rule_params.train_group(PLAN, wildcards.experiment)


def all_targets():
    targets = [
        rules.aggregate.output.runs,
        rules.aggregate.output.summary,
        rules.collect_benchmarks.output[0],
        rules.provenance.output[0],
    ]
    targets += expand(rules.plot_learning_curves.output.png, figure=PLAN.figures)
    settings = PLAN.noise_settings()
    targets += expand(
        rules.plot_noise.output.png,
        zip,
        dataset=[d for d, _ in settings],
        noise=[n for _, n in settings],
    )
    targets += expand(rules.plot_sweep.output.png, sweep=PLAN.sweeps)
    if PLAN.reproduction is not None:
        targets.append(rules.reproduction.output.md)
    return targets


def figure_runs(figure):
    shown = PLAN.figures[figure].experiments
    return [r for r in PLAN.runs if r.experiment in shown]


def figure_packs(wildcards):
    """The output folders of the packs whose runs the figure shows."""
    shown = PLAN.figures[wildcards.figure].experiments
    packs = [p for p in PLAN.packs.values() if p.experiment in shown]
    return pack_files(rules.train.output.runs, packs)


def figure_metrics(wildcards):
    return run_files("metrics", figure_runs(wildcards.figure))


def figure_summaries(wildcards):
    return run_files("summary", figure_runs(wildcards.figure))


def figure_run_ids(wildcards):
    return run_ids(figure_runs(wildcards.figure))


def figure_batch_sizes(wildcards):
    """The batch size of each experiment the figure shows (its x axis is in epochs)."""
    shown = PLAN.figures[wildcards.figure].experiments
    return {name: PLAN.experiments[name].training.batch_size for name in sorted(shown)}


def figure_config(wildcards):
    """The checked figure as plain data (a stable params trigger); the job rebuilds it."""
    return PLAN.figures[wildcards.figure].to_dict()


def sweep_config(wildcards):
    return PLAN.sweeps[wildcards.sweep].to_dict()


def benchmark_files(wildcards):
    """Every job's benchmark file, as its rule names it."""
    files = expand(rules.prepare_dataset.benchmark, dataset=PLAN.prepared_datasets())
    settings = PLAN.noise_settings()
    files += expand(
        rules.estimate_noise.benchmark,
        zip,
        dataset=[d for d, _ in settings],
        noise=[n for _, n in settings],
    )
    files += draw_files(rules.draw_noise.benchmark)
    files += expand(
        rules.plot_noise.benchmark,
        zip,
        dataset=[d for d, _ in settings],
        noise=[n for _, n in settings],
    )
    files += pack_files(rules.train.benchmark)
    files += [rules.aggregate.benchmark, rules.provenance.benchmark]
    files += expand(rules.plot_learning_curves.benchmark, figure=PLAN.figures)
    files += expand(rules.plot_sweep.benchmark, sweep=PLAN.sweeps)
    if PLAN.reproduction is not None:
        files.append(rules.reproduction.benchmark)
    return files


def pack_sizes(wildcards):
    """The number of runs each train job trains, by its benchmark file."""
    sizes = [len(pack.seeds) for pack in PLAN.packs.values()]
    return dict(zip(pack_files(rules.train.benchmark), sizes))


def benchmarks_root(wildcards):
    """The folder the rules' benchmark files lie under (each rule owns its path there)."""
    return os.path.commonpath([rules.aggregate.benchmark, rules.provenance.benchmark])


def figure_caption(wildcards):
    figure = PLAN.figures[wildcards.figure]
    metrics = rule_params.test_metrics(PLAN, figure.experiments)
    evaluation = {
        name: exp.training.eval_text() for name, exp in PLAN.experiments.items()
    }
    return figure_text.learning_curves_caption(figure, metrics, evaluation)


def seeds_caption(wildcards):
    figure = PLAN.figures[wildcards.figure]
    metrics = rule_params.test_metrics(PLAN, figure.experiments)
    return figure_text.seeds_caption(figure, metrics)


def sweep_caption(wildcards):
    sweep = PLAN.sweeps[wildcards.sweep]
    baseline = PLAN.experiments[sweep.experiment].baseline
    metrics = rule_params.test_metrics(PLAN, [p.experiment for p in sweep.points])
    return figure_text.sweep_caption(sweep.to_dict(), baseline, metrics)
