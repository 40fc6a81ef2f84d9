"""The plan of a config as the workflow runs it, for the rules and ``biv check`` alike: the
config validated with the schema's defaults (:mod:`biv.config.validation`), built into a plan
(:mod:`biv.config`), and the data of every dataset an experiment uses checked where it can be
before any job, with the data package's own reading functions: a local ``path`` holds what its
kind reads and as many records as ``train_size`` + ``test_size`` split, a user's table is read
and checked (:mod:`biv.data.user_table`), a UTKFace folder holds images enough, the
reproduction's reference file is well formed and has the panels it names."""

from __future__ import annotations

from biv.config import ConfigError, DatasetSpec, Plan, build_plan
from biv.config.dataset import UCIConfig, UTKFaceConfig, prefix_of
from biv.config.reproduction import Reproduction, read_reference
from biv.config.validation import validated
from biv.data import local, sources


def load_plan(config: dict) -> Plan:
    """The plan of ``config`` (validated: a copy with the schema's defaults filled in), its
    local data checked; a ConfigError naming the key as written for the first problem found."""
    return checked_plan(validated(config))


def checked_plan(config: dict) -> Plan:
    """The plan of a config validated already, its local data checked."""
    plan = build_plan(config, table_sizes=table_sizes)
    for name in sorted({exp.dataset for exp in plan.experiments.values()}):
        check_local_data(plan.datasets[name])
    if plan.reproduction is not None:
        check_reference(plan.reproduction)
    return plan


def table_sizes(data: DatasetSpec) -> tuple[int, int]:
    """The (training, test) rows of a ``table`` dataset: its file read and checked once (split
    per run, split 0's rows: the sizes are every split's; each run's split is checked as the
    dataset of that split)."""
    from biv.data import user_table  # pandas, imported only for tables

    config = data.config.split_with(0) if data.config.split_per_run else data.config
    table = user_table.load(f"datasets.{data.base}", config)
    return len(table.train), len(table.test)


def check_local_data(data: DatasetSpec) -> None:
    """A local ``path`` must exist and hold what its kind reads, and the records (a local
    copy's counted, a download's as published) must be as many as its sizes split (a table's
    were checked when it was read, by :func:`table_sizes`)."""
    cfg = data.config
    if isinstance(cfg, UTKFaceConfig):
        local.checksum_listing(data.name, cfg)
        folder, names = local.image_files(data.name, cfg)
        what = f"{len(names)} images in {folder}"
        local.check_split(data.name, len(names), cfg.train_size, cfg.test_size, what)
    elif isinstance(cfg, UCIConfig) and (found := uci_records(data)) is not None:
        records, what = found
        local.check_split(data.name, records, cfg.train_size, cfg.test_size, what)


def uci_records(data: DatasetSpec) -> tuple[int, str] | None:
    """:func:`biv.data.sources.records`, a local zip the loader cannot read keyed by ``path``."""
    try:
        return sources.records(data.name, data.config)
    except ConfigError:
        raise
    except ValueError as err:  # the loaders' messages start with "datasets.<name>: "
        problem = str(err).split(": ", 1)[-1]
        raise ConfigError(f"{prefix_of(data.name)}.path", problem) from None


def check_reference(reproduction: Reproduction) -> None:
    """The reference file must be well formed (:func:`read_reference`), and each panel of the
    reproduction block one of its panels."""
    reference = read_reference(reproduction.reference)["panels"]
    for name in reproduction.panels:
        if name not in reference:
            raise ConfigError(
                f"reproduction.panels.{name}",
                f"no panel {name!r} in the reference file {reproduction.reference!r} "
                f"(it has: {', '.join(sorted(reference)) or 'none'})",
            )
