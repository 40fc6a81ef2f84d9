"""``split_seed: run`` through the workflow (tests/configs/tiny-split.yaml): each seed trains on
its own split, in a pack of its own, every loss of a seed on the same split; a config edit reruns
only the jobs it affects."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from biv.data import load_prepared, prepare

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
CONFIG = "tiny-split.yaml"


def snakemake(workdir: Path, config: str, *args: str) -> str:
    command = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", config, *args]
    proc = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


@pytest.fixture(scope="module")
def workdir(copy_workflow, tmp_path_factory) -> Path:
    root = copy_workflow(tmp_path_factory.mktemp("split-workflow"))
    shutil.copy2(ROOT / "tests" / "configs" / CONFIG, root / CONFIG)
    shutil.copy2(ROOT / "examples" / "own-data" / "sensors.csv", root / "sensors.csv")
    snakemake(root, CONFIG, "-q")
    return root


def config(workdir: Path) -> dict:
    return yaml.safe_load((workdir / CONFIG).read_text())


def test_each_seed_trains_on_its_own_split_in_a_pack_of_its_own(workdir, tmp_path):
    results = workdir / "results"
    entry = {**config(workdir)["datasets"]["resplit"], "path": str(workdir / "sensors.csv")}
    test_rows = {}
    for seed in (1, 2):
        data = load_prepared(results / "data" / f"resplit__splitseed-{seed}.npz")
        # the split that split_seed: <seed> makes
        prepare("one", {**entry, "split_seed": seed}, tmp_path / "one.npz")
        one = load_prepared(tmp_path / "one.npz")
        for key in ("train_index", "test_index", "x_train", "y_test"):
            assert np.array_equal(data[key].numpy(), one[key].numpy()), key
        for loss in ("l2", "biv"):  # paired: every loss of a seed on its split
            pack = results / "runs" / "resplit" / loss / f"seeds{seed}-{seed}"
            assert [p.name for p in pack.iterdir() if p.is_dir()] == [f"seed{seed}"]
            params = json.loads((pack / f"seed{seed}" / "params.json").read_text())
            assert params["dataset"]["file"] == f"results/data/resplit__splitseed-{seed}.npz"
            assert params["noise"]["file"] == (
                f"results/noise/resplit__splitseed-{seed}/mixture/seeds{seed}-{seed}.npz"
            )
            scored = pd.read_csv(pack / f"seed{seed}" / "predictions.csv")["y_true"]
            assert np.array_equal(scored.to_numpy(np.float32), data["y_test"].numpy())
        test_rows[seed] = set(data["test_index"].tolist())
    assert test_rows[1] != test_rows[2]
    # the same table split once: one pack of both seeds, on one prepared file
    pack = results / "runs" / "fixed" / "l2" / "seeds1-5"
    assert sorted(p.name for p in pack.iterdir() if p.is_dir()) == ["seed1", "seed2"]
    assert sorted(p.name for p in (results / "data").glob("fixed*.npz")) == ["fixed.npz"]


def planned(workdir: Path, edited: dict) -> set[str]:
    """The preparations, noise settings and trainings a dry run of ``edited`` would run."""
    (workdir / "edited.yaml").write_text(yaml.safe_dump(edited, sort_keys=False))
    out = snakemake(workdir, "edited.yaml", "-n")
    return set(re.findall(r"output: (results/(?:data|noise|runs)/[^,\s]+)", out))


def test_an_edit_reruns_only_the_splits_and_packs_it_changes(workdir):
    edited = config(workdir)
    for name, entry in edited["datasets"].items():  # the same entries, keys in another order
        edited["datasets"][name] = dict(reversed(entry.items()))
    assert planned(workdir, edited) == set()
    edited = config(workdir)
    edited["experiments"]["resplit"]["seeds"] = [1, 2, 3]
    assert planned(workdir, edited) == {
        "results/data/resplit__splitseed-3.npz",
        "results/noise/resplit__splitseed-3/mixture/params.json",
        "results/noise/resplit__splitseed-3/mixture/seeds3-3.npz",
        "results/runs/resplit/l2/seeds3-3",
        "results/runs/resplit/biv/seeds3-3",
    }
    edited = config(workdir)
    edited["datasets"]["fixed"]["split_seed"] = "run"
    assert planned(workdir, edited) == {
        "results/data/fixed__splitseed-1.npz",
        "results/data/fixed__splitseed-2.npz",
        "results/runs/fixed/l2/seeds1-1",
        "results/runs/fixed/l2/seeds2-2",
    }
    edited = config(workdir)
    edited["datasets"]["resplit"]["split_seed"] = 2  # seed 2's split, now for every run
    assert planned(workdir, edited) == {
        "results/data/resplit.npz",
        "results/noise/resplit/mixture/params.json",
        "results/noise/resplit/mixture/seeds1-5.npz",
        "results/runs/resplit/l2/seeds1-5",
        "results/runs/resplit/biv/seeds1-5",
    }
