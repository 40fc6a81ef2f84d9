"""Snakemake glue: draw the noisy training labels of one (dataset, noise setting, seed), from
the parameters estimate_noise resolved."""

from biv import atomic, data, logs, noise
from biv.spec.noise import NoiseSpec

logs.setup(snakemake.log[0])
wc = snakemake.wildcards
record = atomic.read_json(snakemake.input.params)["label_units"]
prepared = data.load_prepared(snakemake.input.dataset)
draw = noise.draw(prepared["y_train"], NoiseSpec.from_dict(record), seed=int(wc.seed))
meta = {"dataset": wc.dataset, "noise": wc.noise, "seed": int(wc.seed), "params": record}
noise.save_draw(snakemake.output[0], draw, meta)
