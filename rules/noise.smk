rule estimate_noise_params:
    output:
        "results/noise_params/{noise}.json",
    log:
        "results/logs/estimate_noise_params/{noise}.log",
    benchmark:
        "results/benchmarks/estimate_noise_params/{noise}.tsv"
    conda:
        "../envs/biv.yaml"
    params:
        setting=lambda wildcards: PLAN.noise[wildcards.noise],
    script:
        "../scripts/estimate_noise_params.py"


rule generate_noise:
    input:
        dataset="results/data/{dataset}.pt",
        params="results/noise_params/{noise}.json",
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
