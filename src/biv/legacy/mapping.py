"""Command line of ``biv legacy`` and the mapping of one original command onto run parameters."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from pathlib import Path

import yaml

from biv.config.dataset import PUBLISHER_URLS, SPLIT_PER_RUN
from biv.legacy.fields import LegacyArgError
from biv.legacy.original import parse_final, parse_seed_era

#: Built-in dataset entries (in the config's datasets format); UTKFace has no public URL.
BUILTIN_DATASETS = {
    "utkf": {"kind": "utkface"},
    "bike": {"kind": "bike", "url": PUBLISHER_URLS["bike"]},
    "wine": {"kind": "wine", "url": PUBLISHER_URLS["wine"]},
}
KIND_OF_DATASET = {"utkf": "utkface", "bike": "bike", "wine": "wine"}
#: Sub-folders of --data-dir (the layout of the project's shared data folder).
DATA_DIR_FOLDERS = {"utkf": "utkface", "bike": "bike-sharing", "wine": "wine-quality"}
LOCATION_KEYS = ("path", "url", "sha256", "split_seed", "image_size")
SEED_ERA_FLAGS = ("exp_settings", "noise_params", "estim_noise_params")
FINAL_FLAGS = ("experiment_settings", "model_settings", "params_settings", "parameters")
FINAL_FLAGS_EXTRA = ("extra_exp", "batchsize")
SAFE_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+=-]*$")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # raise instead of exiting, so main() reports it uniformly
        raise LegacyArgError(f"{message} (see biv legacy --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="biv legacy",
        allow_abbrev=False,
        description="Run one experiment from an original (montrealrobotics/BIV) command line: "
        "the seed-era flags (--exp_settings ...) or the final ones (--experiment_settings ...). "
        "Both --flag=value and --flag value work.",
    )
    orig = parser.add_argument_group("original flags (comma-separated fields, unchanged)")
    for name in (
        "exp_settings",
        "noise_settings",
        "noise_params",
        "estim_noise_params",
        "experiment_settings",
        "model_settings",
        "params_settings",
        "parameters",
        "extra_exp",
        "batchsize",
    ):
        orig.add_argument(f"--{name}", metavar="FIELDS")
    ours = parser.add_argument_group("data location, sizes and outputs")
    ours.add_argument(
        "--data-config",
        type=Path,
        metavar="FILE",
        help="YAML file with a `datasets:` block (the workflow's format); entries are looked up "
        "by the original dataset name (utkf, bike, wine) or by kind",
    )
    ours.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="folder holding bike-sharing/, wine-quality/, utkface/; sets each dataset's path "
        "(default: $BIV_DATA_DIR when set)",
    )
    ours.add_argument("--epochs", type=int, help="override the original epochs")
    ours.add_argument("--train-size", type=int, help="override the training-set size")
    ours.add_argument("--test-size", type=int, help="override the test-set size")
    ours.add_argument("--image-size", type=int, help="resize UTKFace images (e.g. 64)")
    ours.add_argument("--out", type=Path, help="run folder (default: results/legacy/<tag>)")
    ours.add_argument(
        "--cache-dir", type=Path, help="prepared data and downloads (default: <out>/../_prepared)"
    )
    ours.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ours.add_argument("--dry-run", action="store_true", help="print the mapped parameters and stop")
    ours.add_argument(
        "--print-config",
        action="store_true",
        help="print the equivalent workflow config (YAML) and stop",
    )
    return parser


def _family(ns: argparse.Namespace) -> str:
    seed = [f for f in SEED_ERA_FLAGS if getattr(ns, f) is not None]
    final = [f for f in FINAL_FLAGS + FINAL_FLAGS_EXTRA if getattr(ns, f) is not None]
    if seed and final:
        raise LegacyArgError(
            f"--{seed[0]} (seed era) cannot be combined with --{final[0]} (final family)"
        )
    if ns.exp_settings is not None:
        return "seed"
    if ns.experiment_settings is not None:
        return "final"
    raise LegacyArgError(
        "give --experiment_settings (final family: with --model_settings, --noise_settings, "
        "--params_settings, --parameters[, --extra_exp]) or --exp_settings (seed era: with "
        "--noise_settings, --noise_params, --estim_noise_params)"
    )


def _positive(value: int | None, flag: str) -> None:
    if value is not None and value < 1:
        raise LegacyArgError(f"{flag}: got {value}; allowed: an integer >= 1")


def load_data_config(path: Path) -> dict:
    """The ``datasets:`` block of a workflow-style YAML file."""
    if not path.is_file():
        raise FileNotFoundError(f"--data-config: file {str(path)!r} does not exist")
    doc = yaml.safe_load(path.read_text())
    datasets = doc.get("datasets") if isinstance(doc, dict) else None
    if not isinstance(datasets, dict) or not datasets:
        raise ValueError(
            f"--data-config {str(path)!r}: no `datasets:` mapping (allowed: a YAML file with "
            "`datasets: {name: {kind: bike|wine|utkface, path|url: ...}}`)"
        )
    return datasets


def dataset_entry(name: str, datasets: Mapping | None, source: str) -> dict:
    """The location part of dataset ``name`` from a ``datasets:`` block (or the built-ins)."""
    if datasets is None:
        return dict(BUILTIN_DATASETS[name])
    kind = KIND_OF_DATASET[name]
    entry = datasets.get(name) or datasets.get(kind)
    if entry is None:
        same_kind = [
            n for n, e in datasets.items() if isinstance(e, dict) and e.get("kind") == kind
        ]
        if len(same_kind) != 1:
            raise ValueError(
                f"{source}: no dataset entry for {name!r} (looked for a key {name!r} or "
                f"{kind!r}, or exactly one entry of kind {kind!r}; found kind {kind!r} in "
                f"{same_kind or 'none'}; entries: {sorted(datasets)})"
            )
        entry = datasets[same_kind[0]]
    if not isinstance(entry, dict) or entry.get("kind", kind) != kind:
        raise ValueError(f"{source}: dataset entry for {name!r} must be a mapping of kind {kind!r}")
    return {"kind": kind} | {k: entry[k] for k in LOCATION_KEYS if k in entry}


def dataset_config(
    name: str,
    train_size: int,
    test_size: int,
    *,
    datasets: Mapping | None,
    source: str,
    data_dir: Path | None,
    image_size: int | None,
    seed: int,
) -> dict:
    """Contract dataset config: location from config/data dir, sizes from the command line;
    ``split_seed: run`` splits with the command's ``seed`` (as the original Bike loader)."""
    cfg = dataset_entry(name, datasets, source)
    if data_dir is not None:
        cfg["path"] = str(data_dir / DATA_DIR_FOLDERS[name])
    if "path" in cfg:  # a local copy wins over the url, as in the workflow
        cfg.pop("url", None)
    if "path" not in cfg and "url" not in cfg:
        raise ValueError(
            f"dataset {name!r} ({cfg['kind']}) has no location: UTKFace has no stable public URL; "
            "download 'Aligned&Cropped Faces' from https://susanqq.github.io/UTKFace/ and pass "
            "--data-dir DIR (with DIR/utkface/*.jpg), set BIV_DATA_DIR, or give a `path:` in "
            "--data-config"
        )
    cfg["train_size"] = train_size
    cfg["test_size"] = test_size
    cfg.setdefault("split_seed", 0)
    if cfg["split_seed"] == SPLIT_PER_RUN:
        cfg["split_seed"] = seed
    if name == "utkf" and image_size is not None:
        cfg["image_size"] = image_size
    return cfg


def map_command(argv: list[str], environ: Mapping[str, str] | None = None) -> dict:
    """Parse ``biv legacy`` arguments into everything one run needs (no files are written)."""
    environ = os.environ if environ is None else environ
    ns = build_parser().parse_args(argv)
    family = _family(ns)
    core = parse_final(ns) if family == "final" else parse_seed_era(ns)
    for flag, value in (
        ("--epochs", ns.epochs),
        ("--train-size", ns.train_size),
        ("--test-size", ns.test_size),
        ("--image-size", ns.image_size),
    ):
        _positive(value, flag)
    notes = core["notes"]
    training = dict(core["training"], device=ns.device)
    if ns.epochs is not None:
        training["epochs"] = ns.epochs
    if ns.image_size is not None and core["dataset"] != "utkf":
        notes.append(f"--image-size is ignored for dataset {core['dataset']}")
    data_dir = ns.data_dir
    if data_dir is None and environ.get("BIV_DATA_DIR"):
        data_dir = Path(environ["BIV_DATA_DIR"])
    if data_dir is not None and not data_dir.is_dir():
        origin = "--data-dir" if ns.data_dir is not None else "BIV_DATA_DIR"
        raise FileNotFoundError(f"{origin}: {str(data_dir)!r} is not a folder")
    datasets = load_data_config(ns.data_config) if ns.data_config is not None else None
    source = f"--data-config {str(ns.data_config)!r}" if datasets is not None else "built-in"
    dataset = dataset_config(
        core["dataset"],
        ns.train_size or core["train_size"],
        ns.test_size or core["test_size"],
        datasets=datasets,
        source=source,
        data_dir=data_dir,
        image_size=ns.image_size,
        seed=core["seed"],
    )
    tag = core["experiment"]
    if ns.out is None and not SAFE_TAG.match(tag):
        flag = "--exp_settings" if family == "seed" else "--experiment_settings"
        raise LegacyArgError(
            f"{flag} field 1 (tag): got {tag!r}; allowed: letters, digits and ._+=- not "
            "starting with a symbol (it names the default run folder results/legacy/<tag>), "
            "or pass --out DIR"
        )
    out = ns.out if ns.out is not None else Path("results", "legacy", tag)
    cache = ns.cache_dir if ns.cache_dir is not None else out.parent / "_prepared"
    return {
        "family": family,
        "argv": list(argv),
        "experiment": tag,
        "seed": core["seed"],
        "loss_name": core["loss_name"],
        "dataset": {"name": core["dataset"], "config": dataset},
        "noise": core["noise"],
        "loss": core["loss"],
        "model": core["model"],
        "training": training,
        "out_dir": str(out),
        "cache_dir": str(cache),
        "dry_run": ns.dry_run,
        "print_config": ns.print_config,
        "notes": notes,
    }


def workflow_config(mapped: dict) -> dict:
    """The workflow config (datasets/noise/models/losses/experiments) of one mapped command."""
    name = mapped["dataset"]["name"]
    # workflow names: letters and digits joined by single "_" or "-"
    exp = re.sub(r"[^A-Za-z0-9]+", lambda m: "_" if m[0] == "_" else "-", mapped["experiment"])
    exp = exp.strip("_-") or "legacy"
    model = mapped["model"]
    model_name = f"{name}-mlp" if model["name"] == "mlp" else model["name"]
    loss_name = mapped["loss_name"]
    config = {
        "datasets": {name: dict(mapped["dataset"]["config"])},
        "noise": {} if mapped["noise"] is None else {exp: mapped["noise"]},
        "models": {model_name: model},
        "losses": {loss_name: mapped["loss"]},
        "experiments": {
            exp: {
                "dataset": name,
                "model": model_name,
                "noise": None if mapped["noise"] is None else exp,
                "losses": [loss_name],
                "seeds": [mapped["seed"]],
                "training": {k: v for k, v in mapped["training"].items() if k != "device"},
            }
        },
    }
    return config
