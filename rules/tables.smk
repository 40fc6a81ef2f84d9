localrules:
    aggregate,
    collect_benchmarks,


# Its inputs are the packs' output folders; the files it reads in them, and the run each is
# of, are params from the plan.
rule aggregate:
    input:
        packs=pack_files(rules.train.output.runs),
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
        summary_files=run_files("summary"),
        params_files=run_files("params"),
        metrics_files=run_files("metrics"),
        predictions_files=run_files("predictions"),
        run_files=run_files("run"),
        runs=run_ids(),
        experiments=rule_params.experiment_table(PLAN),
        sweeps={name: sweep.to_dict() for name, sweep in PLAN.sweeps.items()},
        code=PACKAGE_CODE,
    script:
        "../scripts/aggregate.py"


rule collect_benchmarks:
    input:
        benchmark_files,
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
    params:
        root=benchmarks_root,
        runs=pack_sizes,
    script:
        "../scripts/collect_benchmarks.py"
