"""Snakemake glue: the resolved parameters of one (dataset, noise setting), in label units and in
model units (torch-free: the dataset's label statistics come from its JSON beside the tensors)."""

from biv import atomic, logs
from biv.config.noise import NoiseSpec, write_setting_file

logs.setup(snakemake.log[0])
setting = NoiseSpec.from_dict(snakemake.params.record)
stats = atomic.read_json(snakemake.input.stats)
write_setting_file(
    snakemake.output[0],
    setting,
    dataset=snakemake.wildcards.dataset,
    noise=snakemake.wildcards.noise,
    y_std=stats["y_std"],
    model_units=setting.in_model_units(stats["y_std"]),
)
