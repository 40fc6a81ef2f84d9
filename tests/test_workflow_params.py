"""Rule params in one form: a config edit that changes nothing (keys in another order, ``2`` for
``2.0``) reruns no job, whatever Snakemake's params trigger compares; a change of the package's
code reruns the jobs that compute from the trainings' files, and no training."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "tiny.yaml"]


def snakemake(workdir: Path, *args: str) -> str:
    proc = subprocess.run(
        [*SNAKEMAKE, *args], cwd=workdir, capture_output=True, text=True, timeout=600
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


def reordered(value, depth: int = 0, key: str | None = None):
    """``value`` with the keys of every mapping below the named entries of a block in reverse
    order (the order of the entries orders tables and figures, and a sweep's ``vary`` orders its
    axes: the first key is drawn across), integral floats as ints."""
    if isinstance(value, dict):
        keys = list(value) if depth < 2 or key == "vary" else reversed(list(value))
        return {k: reordered(value[k], depth + 1, k) for k in keys}
    if isinstance(value, list):
        return [reordered(item, depth + 1) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@pytest.mark.workflow
@pytest.mark.slow
def test_an_edit_that_changes_nothing_reruns_nothing(tmp_path, copy_workflow):
    workdir = copy_workflow(tmp_path / "workflow")
    for name in ("tiny.yaml", "tiny-reference.yaml"):
        shutil.copy2(ROOT / "tests" / "configs" / name, workdir / name)
    snakemake(workdir, "-q")
    config = yaml.safe_load((workdir / "tiny.yaml").read_text())
    assert config["noise"]["mixture"]["components"][1]["mean"] == 10.0  # written 10.0: now 10
    edited = reordered(config)
    edited["noise"]["mixture"]["variance_disturbance"] = 0  # a default, written out
    edited["datasets"]["syn"]["split_seed"] = 0
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(edited, sort_keys=False))
    out = snakemake(workdir, "-n")
    assert "Nothing to be done" in out, out[-4000:]

    # the statistics' code changes: the tables, figures and report rerun, nothing before them
    statistics = workdir / "src" / "biv" / "report" / "statistics.py"
    statistics.write_text(statistics.read_text() + "\n# a change of the code\n")
    out = snakemake(workdir, "-n", "--quiet", "rules")
    rerun = {line.split()[0] for line in out.splitlines() if line.strip()}
    assert {"aggregate", "plot_learning_curves", "plot_noise", "reproduction"} <= rerun, out
    assert not rerun & {"train", "train_cpu", "draw_noise", "prepare_dataset", "estimate_noise"}
