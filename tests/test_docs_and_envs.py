"""Documentation and environment files stay true to the code: every config key is documented,
the pinned conda environment lists the same packages as pyproject.toml and installs from the copy
Snakemake makes of it, the containers install the same pins, every link of the documentation
resolves, and the README stays short enough to read top to bottom."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def schema_keys(node: dict, defs: dict) -> set[str]:
    """Every property name the schema defines, following $ref."""
    keys: set[str] = set()
    stack, seen = [node], set()
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if ref and ref not in seen:
                seen.add(ref)
                stack.append(defs[ref.rsplit("/", 1)[-1]])
            keys |= set(item.get("properties", {}))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return keys


def test_config_readme_documents_every_schema_key():
    schema = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())
    readme = (ROOT / "config" / "README.md").read_text()
    keys = schema_keys(schema, schema["$defs"])
    assert len(keys) > 40
    missing = sorted(k for k in keys if not re.search(rf"`[\w.\[\]<>]*\b{k}\b", readme))
    assert not missing, f"config/README.md does not document {missing}"


ENV = ROOT / "envs" / "biv.yaml"
CONTAINERS = [ROOT / "containers" / "biv.def", ROOT / "containers" / "Dockerfile"]


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~ ]", requirement, maxsplit=1)[0].lower()


def env_dependencies(path: Path = ENV) -> list:
    return yaml.safe_load(path.read_text())["dependencies"]


def env_pip_lines(path: Path = ENV) -> list[str]:
    return next(d["pip"] for d in env_dependencies(path) if isinstance(d, dict))


def env_python() -> str:
    """The env's Python pin, e.g. ``python=3.11``."""
    return next(d for d in env_dependencies() if isinstance(d, str) and d.startswith("python="))


def pin(requirement: str) -> str:
    """``name[extras]==version`` of a requirement pinned with ``==``, its name normalized."""
    req = Requirement(requirement)
    assert [s.operator for s in req.specifier] == ["=="], f"{requirement!r} is not pinned"
    (spec,) = req.specifier
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    return f"{canonicalize_name(req.name)}{extras}=={spec.version}"


def pip_line_problem(line: str) -> str | None:
    """Why a pip: line of the env would not install from Snakemake's copy of the file (a path,
    an option such as -e or -r, a file: or other URL, no exact pin), or None."""
    if line.startswith("-"):
        return "a pip option (-e, -r, ...): paths resolve from the copy's folder"
    try:
        req = Requirement(line)
    except InvalidRequirement:
        return "not a requirement (a path?)"
    if req.url:
        return "a URL or file: reference"
    if [s.operator for s in req.specifier] != ["=="]:
        return "not pinned with =="
    return None


def test_conda_env_pins_the_packages_of_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip = env_pip_lines()
    assert [line for line in pip if pip_line_problem(line)] == []
    assert {_name(p) for p in pip} == {_name(d) for d in project["dependencies"]}


@pytest.mark.parametrize(
    "line", ["-e ..", "..", "./dist/biv.whl", "-r requirements.txt", "biv @ file:..", "numpy>=2"]
)
def test_a_pip_line_that_breaks_in_snakemakes_copy_is_caught(line):
    assert pip_line_problem(line)


def pip_install_words(path: Path) -> list[str]:
    """The words after `pip install` of a container file (its one pip command), options left out."""
    lines = path.read_text().replace("\\\n", " ").splitlines()
    commands = [line for line in lines if "pip install" in line and not line.startswith("#")]
    assert len(commands) == 1, f"{path.name}: {len(commands)} pip install commands"
    words = commands[0].split("pip install", 1)[1].split()
    return [w.strip("\"'") for w in words if not w.startswith("-")]


@pytest.mark.parametrize("container", CONTAINERS, ids=lambda p: p.name)
def test_container_installs_exactly_the_pins_of_the_env(container):
    words = pip_install_words(container)
    env_pins = {pin(line) for line in env_pip_lines()}
    assert sorted(pin(w) for w in words) == sorted(env_pins)  # nothing else, nothing twice
    base = re.search(r"(?m)^(?:From:|FROM) python:(\d+\.\d+)-slim$", container.read_text())
    assert base and f"python={base.group(1)}" == env_python()


def snakemakes_copy_of_the_env(root: Path) -> Path:
    """envs/biv.yaml copied to where `--software-deployment-method conda` builds it from, in a
    workflow folder `root`."""
    # snakemake/deployment/conda.py (9.27.1): Env._get_hash hashes the real path of the envs
    # folder (.snakemake/conda) and the file's bytes; Env.address is that folder / the hash;
    # create_env() in Env.create copies the file to address + ".yaml" and runs
    # `conda env create --file <the copy> --prefix <address>`.
    envs = root / ".snakemake" / "conda"
    content = ENV.read_bytes()
    md5 = hashlib.md5(os.path.realpath(envs).encode() + content, usedforsecurity=False)
    envs.mkdir(parents=True)
    copy = envs / f"{md5.hexdigest()}.yaml"
    copy.write_bytes(content)
    return copy


def reported_pin(item: dict) -> str:
    """``pin`` of a package that pip's installation report lists."""
    extras = ",".join(item.get("requested_extras", []))
    return pin(f"{item['metadata']['name']}[{extras}]=={item['metadata']['version']}")


@pytest.mark.skipif(
    env_python() != f"python={sys.version_info.major}.{sys.version_info.minor}",
    reason="pins resolve for the running Python, not the env's",
)
@pytest.mark.slow
def test_env_pins_resolve_from_snakemakes_copy_of_the_env(tmp_path):
    """pip resolves the env's pip: lines against the package index (PyPI) as conda runs it for
    Snakemake's copy: conda/env/installers/pip.py writes the lines to a
    condaenv.*.requirements.txt beside the env file and runs `pip install -U -r` on it with the
    env file's folder as working directory, so a relative path there names .snakemake/conda/."""
    copy = snakemakes_copy_of_the_env(tmp_path)
    lines = env_pip_lines(copy)
    requirements = copy.parent / "condaenv.test.requirements.txt"
    requirements.write_text("\n".join(lines))
    report = tmp_path / "report.json"
    pip = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"]
    proc = subprocess.run(
        [*pip, "--report", str(report), "-r", requirements.name],
        cwd=copy.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    installs = json.loads(report.read_text())["install"]
    assert {reported_pin(i) for i in installs if i["requested"]} == {pin(line) for line in lines}


DOCS = ["README.md", "config/README.md", "bench/README.md", "profiles/slurm/README.md"]
DOCS += [str(p.relative_to(ROOT)) for p in sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors of a Markdown file's headings."""
    slugs = set()
    for heading in re.findall(r"(?m)^#+ (.+)$", markdown):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        slugs.add(slug)
    return slugs


@pytest.mark.parametrize("doc", DOCS)
def test_every_link_of_the_documentation_resolves(doc):
    path = ROOT / doc
    text = path.read_text()
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue  # a web address
        file, _, anchor = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path
        assert resolved.exists(), f"{doc}: link {target!r} names no file"
        if anchor:
            assert anchor in anchors(resolved.read_text()), f"{doc}: no heading for {target!r}"


def test_readme_is_short_and_has_contents():
    text = (ROOT / "README.md").read_text()
    assert len(text.encode()) <= 10 * 1024
    assert "## Contents" in text
