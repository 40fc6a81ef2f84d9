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
    params:
        record=noise_record,
    script:
        "../scripts/estimate_noise.py"


rule generate_noise:
    input:
        dataset=rules.prepare_dataset.output.data,
        params=rules.estimate_noise.output[0],
    output:
        "results/noise/{dataset}/{noise}/seed{seed}.pt",
    log:
        "results/logs/generate_noise/{dataset}/{noise}/seed{seed}.log",
    benchmark:
        "results/benchmarks/generate_noise/{dataset}/{noise}/seed{seed}.tsv"
    conda:
        "../envs/biv.yaml"
    script:
        "../scripts/generate_noise.py"
