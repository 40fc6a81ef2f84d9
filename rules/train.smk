localrules:
    run_folder,


# One job trains a pack (biv.config.Pack: the runs of one experiment and loss in one block of
# training.pack_size seeds). Its checkpoint lies beside the output folder, which Snakemake
# deletes before a rerun, so that a killed job resumes.
rule train:
    input:
        dataset=train_dataset_file,
        noise=train_noise_setting,
    output:
        runs=directory("results/packs/{experiment}/{loss}/{pack}/runs"),
    log:
        "results/logs/train/{experiment}/{loss}/{pack}.log",
    benchmark:
        "results/benchmarks/train/{experiment}/{loss}/{pack}.tsv"
    wildcard_constraints:
        experiment=GPU_EXPERIMENTS,
    group:
        train_group
    conda:
        "../envs/biv.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        runs=pack_parameters,
    script:
        "../scripts/train.py"


# A training on the CPU (training.device: cpu) is a rule of its own: what a profile sets for
# the GPU trainings of rule train (a GPU partition, gpu_model) never reaches it.
use rule train as train_cpu with:
    wildcard_constraints:
        experiment=CPU_EXPERIMENTS,
    resources:
        gpu=0,


# A run's folder, where the tables and figures read it: hard links of its pack's member files.
rule run_folder:
    input:
        run_pack,
    output:
        params="results/runs/{experiment}/{loss}/seed{seed}/params.json",
        summary="results/runs/{experiment}/{loss}/seed{seed}/summary.json",
        metrics="results/runs/{experiment}/{loss}/seed{seed}/metrics.csv",
        predictions="results/runs/{experiment}/{loss}/seed{seed}/predictions.csv",
        run="results/runs/{experiment}/{loss}/seed{seed}/run.json",
    log:
        "results/logs/run_folder/{experiment}/{loss}/seed{seed}.log",
    conda:
        "../envs/biv.yaml"
    shell:
        "python -m biv.workflow.run_folders {input:q} {wildcards.seed} {log:q} {output:q}"
