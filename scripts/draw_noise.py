"""Snakemake glue: every seed's noise draw of one (dataset, noise setting, seed block), and its
summary (torch-free)."""

from biv import atomic, logs
from biv.data.prepared import train_labels
from biv.noise.files import read_draw_file, summary, write_draw_file

logs.setup(snakemake.log[0])
setting = atomic.read_json(snakemake.input.setting)["label_units"]
names = {"dataset": snakemake.wildcards.dataset, "noise": snakemake.wildcards.noise}
y_train = train_labels(snakemake.input.data)
write_draw_file(snakemake.output.draws, y_train, setting, snakemake.params.seeds, **names)
arrays = read_draw_file(snakemake.output.draws)
atomic.write_text(snakemake.output.summary, summary(arrays, snakemake.params.thresholds))
