localrules:
    provenance,


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
        config=normal(config),  # in one form: an edit that changes nothing reruns nothing
    script:
        "../scripts/provenance.py"


if PLAN.reproduction is not None:

    localrules:
        reproduction,

    rule reproduction:
        input:
            summary=rules.aggregate.output.summary,
            reference=PLAN.reproduction.reference,
            figure=expand(
                rules.plot_learning_curves.output.png,
                figure=PLAN.reproduction.figure,
            )[0],
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
            block=PLAN.reproduction.to_dict(),
        script:
            "../scripts/reproduction.py"
