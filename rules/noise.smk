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


# Every seed's noise draw for one block of seeds (the packs' blocks: biv.config.Plan.noise_draws),
# torch-free; the training jobs read their members' draws from it and never draw.
rule draw_noise:
    input:
        data=rules.prepare_dataset.output.data,
        setting=rules.estimate_noise.output[0],
    output:
        draws="results/noise/{dataset}/{noise}/{block}.npz",
        summary="results/noise/{dataset}/{noise}/{block}.csv",
    log:
        "results/logs/draw_noise/{dataset}/{noise}/{block}.log",
    benchmark:
        "results/benchmarks/draw_noise/{dataset}/{noise}/{block}.tsv"
    wildcard_constraints:
        block=r"seeds-?\d+--?\d+",
    conda:
        "../envs/biv.yaml"
    resources:
        runtime=1,  # minutes: it takes a fraction of a second
        mem_mb=1000,
    params:
        seeds=draw_seeds,
        thresholds=lambda wildcards: PLAN.cutoff_thresholds(
            wildcards.dataset, wildcards.noise
        ),
    script:
        "../scripts/draw_noise.py"
