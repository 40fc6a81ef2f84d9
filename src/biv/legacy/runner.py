"""Run one mapped legacy experiment: prepare data, resolve the noise setting, train (drawing the
noisy labels with the run's seed)."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import yaml

import biv
from biv.atomic import read_json, write_json
from biv.legacy.fields import LegacyArgError
from biv.legacy.mapping import workflow_config

if TYPE_CHECKING:
    from biv.config.noise import NoiseSpec

#: Keys of the mapping that define the experiment (a run folder holds exactly one).
IDENTITY_KEYS = ("experiment", "seed", "loss_name", "dataset", "noise", "loss", "model", "training")


def describe(mapped: dict) -> str:
    """The mapped parameters as printed before running."""
    shown = {k: mapped[k] for k in IDENTITY_KEYS}
    lines = [f"biv legacy: {mapped['family']} command mapped to:", json.dumps(shown, indent=2)]
    lines += [f"run folder: {mapped['out_dir']}   prepared-data cache: {mapped['cache_dir']}"]
    lines += [f"note: {n}" for n in mapped["notes"]]
    return "\n".join(lines)


def prepared_file(name: str, cfg: dict, cache_dir: Path) -> Path:
    """Prepare dataset ``name`` once per distinct config into ``cache_dir``; return the file."""
    from biv.data import prepare

    key = json.dumps({"name": name, "config": cfg, "biv": biv.__version__}, sort_keys=True)
    path = cache_dir / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.npz"
    if not path.exists():
        print(f"biv legacy: preparing {name} into {path}", flush=True)
        prepare(name, cfg, path, cache_dir / "downloads")
    return path


def _check_out_dir(out_dir: Path, mapped: dict) -> None:
    record = out_dir / "legacy.json"
    if not record.exists():
        return
    before = read_json(record).get("mapped", {})
    differ = [k for k in IDENTITY_KEYS if before.get(k) != mapped[k]]
    if differ:
        raise ValueError(
            f"--out {str(out_dir)!r} holds a different legacy experiment (differs in "
            f"{', '.join(differ)}); allowed: a new folder, or the same command to resume"
        )


def config_text(mapped: dict) -> str:
    """The equivalent workflow config as YAML, the notes as comments."""
    argv = [a for a in mapped["argv"] if a != "--print-config"]
    lines = [f"# biv legacy {' '.join(argv)}"]
    lines += [f"# note: {n}" for n in mapped["notes"]]
    if mapped["loss"].get("threshold", 0.0) is None:
        lines.append("# fill in losses.cutoff.threshold: y_std**2 of the training labels")
    body = yaml.safe_dump(workflow_config(mapped), sort_keys=False, default_flow_style=None)
    return "\n".join(lines) + "\n" + body


def _validate(mapped: dict) -> None:
    """Check the run parameters and the model's input size before anything is written."""
    from biv.config import RunSpec
    from biv.config.dataset import UTKFaceConfig, parse
    from biv.config.model import check_input

    loss = mapped["loss"]
    if loss.get("threshold", 0.0) is None:
        loss = dict(loss, threshold=1.0)  # placeholder: the default is set after preparation
    placeholder = {"name": "check", "file": "check.pt"}
    run = RunSpec.from_dict(
        {
            "experiment": mapped["experiment"],
            "loss_name": mapped["loss_name"],
            "seed": mapped["seed"],
            "dataset": placeholder,
            "noise": None if mapped["noise"] is None else placeholder,
            "loss": loss,
            "model": mapped["model"],
            "training": mapped["training"],
        }
    )
    cfg = parse(mapped["dataset"]["name"], mapped["dataset"]["config"])
    if isinstance(cfg, UTKFaceConfig):
        size = cfg.image_side
        try:
            check_input("model.name", run.model, (3, size, size))
        except ValueError as e:
            raise ValueError(f"{e} (the images are {size}x{size}: see --image-size)") from e


def _noise_spec(mapped: dict) -> NoiseSpec | None:
    """The resolved noise setting (torch-free), or None without noise."""
    from biv.config.noise import resolve

    if mapped["noise"] is None:
        return None
    try:
        return resolve(mapped["noise"])
    except ValueError as e:
        raise LegacyArgError(
            f"--noise_settings/--params_settings/--parameters (or the seed-era noise flags) "
            f"give an impossible noise setting: {e}"
        ) from e


def run(mapped: dict, stream: TextIO | None = None) -> int:
    """Print the mapping, then (unless a dry run) run it; return the training's exit code."""
    stream = sys.stdout if stream is None else stream
    if mapped["print_config"]:
        print(config_text(mapped), file=stream, end="", flush=True)
        return 0
    print(describe(mapped), file=stream, flush=True)
    setting = _noise_spec(mapped)  # checked by a dry run too, as everything below
    _validate(mapped)
    if mapped["dry_run"]:
        return 0
    from biv import logs
    from biv.config import RunSpec
    from biv.data.prepared import label_std, train_labels
    from biv.noise.files import write_draw_file
    from biv.train.loop import run_training

    loss = dict(mapped["loss"])
    out_dir = Path(mapped["out_dir"])
    _check_out_dir(out_dir, mapped)

    name, cfg = mapped["dataset"]["name"], mapped["dataset"]["config"]
    data_file = prepared_file(name, cfg, Path(mapped["cache_dir"]))
    if loss["type"] == "cutoff" and loss["threshold"] is None:
        # the original's default: 1 in the loss's (normalized) units
        normalize = mapped["training"]["normalize"]
        loss["threshold"] = label_std(data_file) ** 2 if normalize else 1.0
        print(f"cutoff threshold: {loss['threshold']:g} raw units^2", file=stream)

    noise_ref = None
    if setting is not None:  # the run's noise draw: from this setting with its seed
        noise_file = out_dir / "noise.npz"
        labels, seeds = train_labels(data_file), [mapped["seed"]]
        write_draw_file(noise_file, labels, setting.to_dict(), seeds, dataset=name)
        noise_ref = {"name": mapped["experiment"], "file": str(noise_file.resolve())}
    run_params = {
        "experiment": mapped["experiment"],
        "loss_name": mapped["loss_name"],
        "seed": mapped["seed"],
        "dataset": {"name": name, "file": str(data_file.resolve())},
        "noise": noise_ref,
        "loss": loss,
        "model": mapped["model"],
        "training": mapped["training"],
    }
    run = RunSpec.from_dict(run_params)
    write_json(out_dir / "legacy.json", {"argv": mapped["argv"], "mapped": mapped})
    logs.setup()
    return run_training(run, out_dir)
