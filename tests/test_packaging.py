"""The package installed as a user installs it (``pip install .``, not editable): ``biv check``
finds the schema shipped in the package, from any working directory; the workflow runs from a
working directory outside its tree (``snakemake -s <tree>/Snakefile -d <folder>``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def clean_env() -> dict:
    """No PYTHONPATH: the installed package is the one imported."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


@pytest.fixture(scope="module")
def installed(tmp_path_factory, copy_workflow, workflow_files) -> Path:
    """A virtual environment (seeing the dependencies installed here) with the project installed
    from a copy of its files: its bin folder."""
    tmp = tmp_path_factory.mktemp("install")
    tree = copy_workflow(tmp / "tree", [*workflow_files, "pyproject.toml", "README.md"])
    venv = tmp / "venv"
    # without pip of its own: this Python's pip and setuptools (the build backend pyproject.toml
    # asks for) install into it
    command = [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv]
    subprocess.run(command, check=True)
    pip = [venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps"]
    proc = subprocess.run(
        [*pip, "--no-build-isolation", str(tree)], env=clean_env(), capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shutil.rmtree(tree)  # nothing may come from the source tree
    return venv / "bin"


@pytest.mark.slow
def test_biv_check_of_an_installed_package_from_another_folder(installed, tmp_path):
    where = subprocess.run(
        [installed / "python", "-c", "import biv.config.validation as m; print(m.__file__)"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(installed.parent)), where  # the installed copy, not a checkout
    config = tmp_path / "demo.yaml"
    shutil.copy2(ROOT / "config" / "config.yaml", config)
    proc = subprocess.run(
        [installed / "biv", "check", config.name],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "demo.yaml: ok (2 experiments, 15 trainings, 5 training jobs)"
    config.write_text(config.read_text().replace("epsilon: 0.5", "epsilon: -1", 1))
    proc = subprocess.run(
        [installed / "biv", "check", str(config)], cwd=tmp_path, env=clean_env(), text=True,
        capture_output=True,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "epsilon: -1 is less than the minimum of 0" in proc.stdout


@pytest.mark.workflow
@pytest.mark.slow
def test_the_demo_runs_from_a_working_directory_outside_the_tree(
    installed, tmp_path, copy_workflow
):
    tree = copy_workflow(tmp_path / "tree")
    other = tmp_path / "elsewhere"
    proc = subprocess.run(
        [installed / "python", "-m", "snakemake", "-s", tree / "Snakefile", "--cores", "2"]
        + ["-d", other, "-q"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert (other / "results" / "tables" / "summary.csv").is_file()
    assert (other / "results" / "figures" / "learning_curves.png").is_file()
    assert not (tree / "results").exists()
