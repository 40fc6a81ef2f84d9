localrules:
    plot_learning_curves,
    plot_sweep,


rule plot_learning_curves:
    input:
        packs=figure_packs,
    output:
        png=report(
            "results/figures/{figure}.png",
            caption="../report/learning_curves.rst",
            category="Learning curves",
            labels={"figure": "{figure}"},
        ),
        pdf="results/figures/{figure}.pdf",
    log:
        "results/logs/plot_learning_curves/{figure}.log",
    benchmark:
        "results/benchmarks/plot_learning_curves/{figure}.tsv"
    conda:
        "../envs/biv.yaml"
    params:
        metrics_files=figure_metrics,
        runs=figure_run_ids,
        figure=figure_config,
        caption=figure_caption,
        batch_sizes=figure_batch_sizes,
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
            labels={"sweep": "{sweep}"},
        ),
        pdf="results/figures/sweeps/{sweep}.pdf",
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
