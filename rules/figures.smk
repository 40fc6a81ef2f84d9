localrules:
    plot_learning_curves,
    plot_sweep,


# One job per learning-curve figure draws it and, from the same runs, each run's own best and
# final score per seed (a job of its own would wait for a free core after the trainings).
# Every figure's numbers lie beside it as CSV, drawn from the runs' files in the job.
rule plot_learning_curves:
    input:
        packs=figure_packs,
    output:
        png=report(
            "results/figures/{figure}.png",
            caption="../report/learning_curves.rst",
            category="Learning curves",
            labels={"figure": "{figure}", "file": "figure"},
        ),
        pdf="results/figures/{figure}.pdf",
        csv=report(
            "results/figures/{figure}.csv",
            caption="../report/learning_curves_table.rst",
            category="Learning curves",
            labels={"figure": "{figure}", "file": "numbers (CSV)"},
        ),
        seeds_png=report(
            "results/figures/seeds/{figure}.png",
            caption="../report/seeds.rst",
            category="Per-seed values",
            labels={"figure": "{figure}", "file": "figure"},
        ),
        seeds_pdf="results/figures/seeds/{figure}.pdf",
        seeds_csv=report(
            "results/figures/seeds/{figure}.csv",
            caption="../report/seeds_table.rst",
            category="Per-seed values",
            labels={"figure": "{figure}", "file": "numbers (CSV)"},
        ),
    log:
        "results/logs/plot_learning_curves/{figure}.log",
    benchmark:
        "results/benchmarks/plot_learning_curves/{figure}.tsv"
    conda:
        "../envs/biv.yaml"
    params:
        metrics_files=figure_metrics,
        summary_files=figure_summaries,
        runs=figure_run_ids,
        figure=figure_config,
        caption=figure_caption,
        seeds_caption=seeds_caption,
        batch_sizes=figure_batch_sizes,
        code=PACKAGE_CODE,
    script:
        "../scripts/plot_learning_curves.py"


rule plot_sweep:
    input:
        summary=rules.aggregate.output.summary,
    output:
        png=report(
            "results/figures/sweeps/{sweep}.png",
            caption="../report/sweep.rst",
            category="Sweeps",
            labels={"sweep": "{sweep}", "file": "figure"},
        ),
        pdf="results/figures/sweeps/{sweep}.pdf",
        csv=report(
            "results/figures/sweeps/{sweep}.csv",
            caption="../report/sweep_table.rst",
            category="Sweeps",
            labels={"sweep": "{sweep}", "file": "numbers (CSV)"},
        ),
    log:
        "results/logs/plot_sweep/{sweep}.log",
    benchmark:
        "results/benchmarks/plot_sweep/{sweep}.tsv"
    conda:
        "../envs/biv.yaml"
    params:
        sweep=sweep_config,
        caption=sweep_caption,
    script:
        "../scripts/plot_sweep.py"


# The drawn label-noise variances of one (dataset, noise setting), every seed of its draw files:
# the picture a reader of the paper wants before any curve (biv.report.plots.noise_variance_plot).
# Not a local rule: on a cluster it runs in the group job of the draws (profiles/slurm: noise),
# not as a matplotlib start per setting on the submit host.
rule plot_noise:
    input:
        draws=noise_draw_files,
    output:
        png=report(
            "results/figures/noise/{dataset}/{noise}.png",
            caption="../report/noise.rst",
            category="Noise variances",
            labels={"dataset": "{dataset}", "noise": "{noise}", "file": "figure"},
        ),
        pdf="results/figures/noise/{dataset}/{noise}.pdf",
        csv=report(
            "results/figures/noise/{dataset}/{noise}.csv",
            caption="../report/noise_table.rst",
            category="Noise variances",
            labels={
                "dataset": "{dataset}",
                "noise": "{noise}",
                "file": "numbers (CSV)",
            },
        ),
    log:
        "results/logs/plot_noise/{dataset}/{noise}.log",
    benchmark:
        "results/benchmarks/plot_noise/{dataset}/{noise}.tsv"
    conda:
        "../envs/biv.yaml"
    resources:
        runtime=1,  # minutes: a matplotlib start and one figure
        mem_mb=1000,
    params:
        thresholds=lambda wildcards: PLAN.cutoff_thresholds(
            wildcards.dataset, wildcards.noise
        ),
        code=PACKAGE_CODE,
    script:
        "../scripts/plot_noise.py"
