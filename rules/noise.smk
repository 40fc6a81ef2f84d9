rule generate_noise:
    input:
        dataset=rules.prepare_dataset.output[0],
    output:
        "results/noise/{dataset}/{noise}/seed{seed}.pt",
    log:
        "results/logs/generate_noise/{dataset}/{noise}/seed{seed}.log",
    benchmark:
        "results/benchmarks/generate_noise/{dataset}/{noise}/seed{seed}.tsv"
    conda:
        "../envs/biv.yaml"
    params:
        record=noise_record,
    script:
        "../scripts/generate_noise.py"
