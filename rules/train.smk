rule train:
    input:
        dataset=train_dataset_file,
        noise=train_noise_file,
    output:
        params="results/runs/{experiment}/{loss}/seed{seed}/params.json",
        summary="results/runs/{experiment}/{loss}/seed{seed}/summary.json",
        metrics="results/runs/{experiment}/{loss}/seed{seed}/metrics.csv",
        predictions="results/runs/{experiment}/{loss}/seed{seed}/predictions.csv",
        run="results/runs/{experiment}/{loss}/seed{seed}/run.json",
    log:
        "results/logs/train/{experiment}/{loss}/seed{seed}.log",
    benchmark:
        "results/benchmarks/train/{experiment}/{loss}/seed{seed}.tsv"
    group:
        train_group
    conda:
        "../envs/biv.yaml"
    threads: 1
    resources:
        gpu=train_gpus,
    params:
        run=run_parameters,
    script:
        "../scripts/train.py"
