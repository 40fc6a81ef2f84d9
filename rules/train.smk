# One job trains a pack (biv.config.Pack: the runs of one experiment and loss in one block of
# training.pack_size seeds). Its output folder holds the members' run folders, seed{s}/, where
# the tables and figures read them: no job per run. Its checkpoint lies outside it, in
# results/checkpoints/ (Snakemake deletes the output folder before a rerun), so that a killed
# job resumes.
rule train:
    input:
        dataset=train_dataset_file,
        noise=train_noise_draws,
    output:
        runs=directory("results/runs/{experiment}/{loss}/{pack}"),
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
        checkpoint_dir="results/checkpoints/{experiment}/{loss}/{pack}",
    script:
        "../scripts/train.py"


# A training on the CPU (training.device: cpu) is a rule of its own: what a profile sets for
# the GPU trainings of rule train (a GPU partition, gpu_model) never reaches it.
use rule train as train_cpu with:
    wildcard_constraints:
        experiment=CPU_EXPERIMENTS,
    resources:
        gpu=0,
