localrules:
    run_params,


rule run_params:
    output:
        "results/runs/{experiment}/{loss}/seed{seed}/params.json",
    log:
        "results/logs/run_params/{experiment}/{loss}/seed{seed}.log",
    params:
        run=lambda wildcards: wf.run_params(
            PLAN, wildcards.experiment, wildcards.loss, int(wildcards.seed)
        ),
    run:
        io.write_json(output[0], params.run)
        io.write_text(log[0], f"wrote {output[0]}\n")


rule train:
    input:
        params="results/runs/{experiment}/{loss}/seed{seed}/params.json",
        dataset=lambda wildcards: wf.dataset_file(
            PLAN.experiments[wildcards.experiment]["dataset"]
        ),
        noise=experiment_noise_file,
    output:
        summary="results/runs/{experiment}/{loss}/seed{seed}/summary.json",
        metrics="results/runs/{experiment}/{loss}/seed{seed}/metrics.csv",
        predictions="results/runs/{experiment}/{loss}/seed{seed}/predictions.csv",
        run="results/runs/{experiment}/{loss}/seed{seed}/run.json",
    log:
        "results/logs/train/{experiment}/{loss}/seed{seed}.log",
    benchmark:
        "results/benchmarks/train/{experiment}/{loss}/seed{seed}.tsv"
    group:
        lambda wildcards: wf.train_group(PLAN, wildcards.experiment)
    conda:
        "../envs/biv.yaml"
    threads: 1
    params:
        out_dir=lambda wildcards, output: os.path.dirname(output.summary),
    shell:
        "OMP_NUM_THREADS={threads} biv train {input.params:q} {params.out_dir:q} > {log:q} 2>&1"
