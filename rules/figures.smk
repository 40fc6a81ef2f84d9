from biv import figure_spec


localrules:
    aggregate,
    collect_benchmarks,
    provenance,
    plot_learning_curves,
    plot_sweep,
    reproduction,


rule aggregate:
    input:
        summaries=run_files("summary"),
        params=run_files("params"),
        metrics=run_files("metrics"),
    output:
        runs=report(
            "results/tables/runs.csv",
            caption="../report/runs.rst",
            category="Tables",
        ),
        summary=report(
            "results/tables/summary.csv",
            caption="../report/summary.rst",
            category="Tables",
        ),
        summary_html=report(
            "results/tables/summary.html",
            caption="../report/summary.rst",
            category="Tables",
        ),
    log:
        "results/logs/aggregate.log",
    benchmark:
        "results/benchmarks/aggregate/all.tsv"
    conda:
        "../envs/biv.yaml"
    params:
        experiments=wf.experiment_table(PLAN),
        sweeps={name: sweep.as_dict() for name, sweep in PLAN.sweeps.items()},
    script:
        "../scripts/aggregate.py"


rule collect_benchmarks:
    input:
        benchmark_files(),
    output:
        report(
            "results/tables/benchmarks.csv",
            caption="../report/benchmarks.rst",
            category="Tables",
        ),
    log:
        "results/logs/collect_benchmarks.log",
    conda:
        "../envs/biv.yaml"
    script:
        "../scripts/collect_benchmarks.py"


rule provenance:
    input:
        rules.aggregate.output.runs,
    output:
        "results/provenance.json",
    log:
        "results/logs/provenance.log",
    benchmark:
        "results/benchmarks/provenance/all.tsv"
    conda:
        "../envs/biv.yaml"
    params:
        config=config,
    script:
        "../scripts/provenance.py"


rule plot_learning_curves:
    input:
        runs=rules.aggregate.output.runs,
        metrics=figure_metrics,
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
        figure=figure_config,
        caption=lambda wildcards: figure_spec.learning_curves_caption(
            figure_config(wildcards), wildcards.figure
        ),
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
        caption=lambda wildcards: figure_spec.sweep_caption(
            sweep_config(wildcards),
            PLAN.experiments[PLAN.sweeps[wildcards.sweep].experiment].baseline,
        ),
    script:
        "../scripts/plot_sweep.py"


rule reproduction:
    input:
        summary=rules.aggregate.output.summary,
        reference=config.get("reproduction", {}).get("reference", []),
        figure=lambda wildcards: f"results/figures/{config['reproduction']['figure']}.png",
    output:
        md="results/reproduction.md",
        html=report(
            "results/reproduction.html",
            caption="../report/reproduction.rst",
            category="Reproduction",
        ),
    log:
        "results/logs/reproduction.log",
    benchmark:
        "results/benchmarks/reproduction/all.tsv"
    conda:
        "../envs/biv.yaml"
    params:
        block=config.get("reproduction"),
    script:
        "../scripts/reproduction.py"
