rule prepare_dataset:
    input:
        dataset_inputs,
    output:
        data="results/data/{dataset}.npz",
        stats="results/data/{dataset}.json",
    log:
        "results/logs/prepare_dataset/{dataset}.log",
    benchmark:
        "results/benchmarks/prepare_dataset/{dataset}.tsv"
    conda:
        "../envs/biv.yaml"
    threads: 2
    params:
        cfg=dataset_config,
    script:
        "../scripts/prepare_dataset.py"
