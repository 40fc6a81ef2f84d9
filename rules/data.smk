localrules:
    download,


# One job per publisher zip, on the submit host (the compute nodes of many clusters have no
# network): the zip into download_dir, every file read from it checked by sha256. Its record is
# an ancient() input of prepare_dataset, which reads the zip without network: downloading again
# (after moving download_dir, say) reruns nothing else.
rule download:
    output:
        "results/downloads/{archive}.json",
    log:
        "results/logs/download/{archive}.log",
    conda:
        "../envs/biv.yaml"
    params:
        datasets=download_datasets,
        download_dir=config["download_dir"],
    script:
        "../scripts/download.py"


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
    resources:
        runtime=prepare_runtime,
        mem_mb=prepare_mem_mb,
    params:
        cfg=dataset_config,
    script:
        "../scripts/prepare_dataset.py"
