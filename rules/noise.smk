rule estimate_noise:
    input:
        stats=rules.prepare_dataset.output.stats,
    output:
        "results/noise/{dataset}/{noise}/params.json",
    log:
        "results/logs/estimate_noise/{dataset}/{noise}.log",
    benchmark:
        "results/benchmarks/estimate_noise/{dataset}/{noise}.tsv"
    conda:
        "../envs/biv.yaml"
    resources:
        runtime=1,  # minutes: it takes a fraction of a second
        mem_mb=500,
    params:
        record=noise_record,
    script:
        "../scripts/estimate_noise.py"
