"""Documentation and environment files stay true to the code: every config key is documented,
the pinned conda environment lists the same packages as pyproject.toml and installs from the copy
Snakemake makes of it, the containers install the same pins, every link of the documentation
resolves, the README stays short enough to read top to bottom, and the docs name modules and files
that exist, carry no dates or issue numbers (those go to bench/results.md), and show what the code
produces (sweep names, `biv legacy --print-config`, where summary.csv's columns are defined)."""

from __future__ import annotations

import ast
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


# ----------------------------------------------------------- the docs name what exists and is true

#: Product docs: they describe the present (dated measurements live in bench/results.md).
PRODUCT_DOCS = ["README.md", "config/README.md", "bench/README.md"]
PRODUCT_DOCS += [str(p.relative_to(ROOT)) for p in sorted((ROOT / "docs").glob("*.md"))]
MODULE_NAME = re.compile(r"(?<![\w/.-])biv(?:\.[A-Za-z_]\w*)+")
FILE_SUFFIXES = {"def", "sif", "yaml", "yml", "md", "py", "whl"}  # biv.def, envs/biv.yaml, ...
REPO_PATH = re.compile(
    r"(?<![\w/.-])(?:src|tests|bench|scripts|rules|config|profiles|envs|containers|examples|docs"
    r"|report)/[\w./-]*[\w/]"
)


def module_file(parts: list[str]) -> Path | None:
    """src/biv/a/b.py or src/biv/a/b/__init__.py for ``biv.a.b``; None if neither exists."""
    base = ROOT / "src" / Path(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def top_level_names(path: Path) -> dict[str, ast.AST | None]:
    """The names a module defines or imports at its top level (classes with their node)."""
    names: dict[str, ast.AST | None] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names[node.name] = None
        elif isinstance(node, ast.ClassDef):
            names[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id: None for t in targets if isinstance(t, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0]: None for a in node.names}
    return names


def module_name_problem(name: str) -> str | None:
    """Why a dotted ``biv.…`` name of the docs names nothing in src/biv, or None."""
    parts = name.split(".")
    k = max((k for k in range(1, len(parts) + 1) if module_file(parts[:k])), default=0)
    if k == 0:
        return "no such module"
    rest = parts[k:]
    if not rest:
        return None
    names = top_level_names(module_file(parts[:k]))
    if rest[0] not in names:
        return f"{'.'.join(parts[:k])} defines no {rest[0]!r}"
    node = names[rest[0]]
    if len(rest) > 1 and isinstance(node, ast.ClassDef):
        members = {getattr(n, "name", None) for n in node.body}
        members |= {t.id for n in node.body if isinstance(n, ast.Assign) for t in n.targets}
        if rest[1] not in members:
            return f"{rest[0]} has no member {rest[1]!r}"
    return None


@pytest.mark.parametrize("doc", DOCS)
def test_every_module_the_documentation_names_exists(doc):
    text = (ROOT / doc).read_text()
    names = {n for n in MODULE_NAME.findall(text) if n.split(".")[1] not in FILE_SUFFIXES}
    problems = {n: p for n in sorted(names) if (p := module_name_problem(n))}
    assert not problems, f"{doc}: {problems}"


@pytest.mark.parametrize(
    "name", ["biv.spec", "biv.aggregate", "biv.train.cuda_step", "biv.noise.draws.save_draw"]
)
def test_a_module_name_that_is_gone_is_caught(name):
    assert module_name_problem(name)


@pytest.mark.parametrize("doc", PRODUCT_DOCS)
def test_every_repository_path_the_product_docs_name_exists(doc):
    text = (ROOT / doc).read_text()
    missing = sorted(p for p in set(REPO_PATH.findall(text)) if not (ROOT / p).exists())
    assert not missing, f"{doc} names files that do not exist: {missing}"


DATE = re.compile(r"\b20\d\d-[01]\d-[0-3]\d\b")
CLOCK = re.compile(r"\b[0-2]?\d:[0-5]\d\b")
ISSUE = re.compile(r"(?<![\w&/])#\d+\b|\bissues? \d+")


@pytest.mark.parametrize("doc", PRODUCT_DOCS)
def test_product_docs_carry_no_dates_clock_times_or_issue_numbers(doc):
    """Dated measurements go to bench/results.md; the docs say what is, not when or for which
    issue it was found."""
    text = (ROOT / doc).read_text()
    found = DATE.findall(text) + CLOCK.findall(text) + ISSUE.findall(text)
    assert not found, f"{doc}: {found} (move dated measurements to bench/results.md)"


def test_the_benchmark_log_is_dated_newest_first():
    dates = re.findall(r"(?m)^## (20\d\d-\d\d-\d\d)$", (ROOT / "bench" / "results.md").read_text())
    assert len(dates) >= 3 and dates == sorted(dates, reverse=True)


def test_summary_column_definitions_are_where_the_docs_point():
    """config/README.md's layout of results/ says where summary.csv's columns are defined."""
    from biv.report.html import summary_html
    from biv.report.tables import SUMMARY_COLUMNS

    readme = (ROOT / "config" / "README.md").read_text()
    (row,) = [line for line in readme.splitlines() if line.startswith("| `tables/summary.csv`")]
    assert "`SUMMARY_COLUMNS` in `src/biv/report/tables.py`" in row and "summary.html" in row
    assert "SUMMARY_COLUMNS = {" in (ROOT / "src" / "biv" / "report" / "tables.py").read_text()
    import pandas as pd

    html = summary_html(pd.DataFrame(columns=list(SUMMARY_COLUMNS)))
    assert "Columns of summary.csv" in html and "Columns of summary.csv" in row
    assert all(f"<code>{column}</code>" in html for column in SUMMARY_COLUMNS)


def readme_example_config() -> dict:
    """The YAML examples of config/README.md merged into one config (the Bike dataset, its noise
    setting and a model for the example experiment)."""
    config: dict = {}
    readme = (ROOT / "config" / "README.md").read_text()
    for block in re.findall(r"```yaml\n(.*?)```", readme, re.S):
        for key, value in yaml.safe_load(block).items():
            if isinstance(value, dict):
                config.setdefault(key, {}).update(value)
    config["datasets"] = {"bike": config["datasets"]["bike"]}
    config["noise"] = {"gamma-20000": config["noise"]["gamma-20000"]}
    config["models"] = {"bike-mlp": {"name": "mlp"}}
    del config["figures"], config["reproduction"]
    return config


def test_the_sweep_names_config_readme_gives_are_those_its_example_produces():
    from biv.config import build_plan

    readme = (ROOT / "config" / "README.md").read_text()
    paragraph = readme[readme.index("Each point is an experiment named") :].split("\n\n")[0]
    named = set(re.findall(r"`([\w-]+__[\w-]+)`", paragraph))
    plan = build_plan(readme_example_config())
    paper = build_plan(yaml.safe_load((ROOT / "config" / "paper.yaml").read_text()))
    produced = set(plan.experiments) | set(plan.noise) | set(paper.experiments)
    assert len(named) >= 4 and named <= produced, sorted(named - produced)


def legacy_doc_blocks() -> list[str]:
    text = (ROOT / "docs" / "legacy.md").read_text()
    section = text[text.index("## The equivalent workflow config") : text.index("## Bad input")]
    return re.findall(r"```yaml\n(.*?)```", section, re.S)


def test_docs_legacy_shows_what_biv_legacy_prints(tmp_path, monkeypatch, capsys):
    """docs/legacy.md shows `biv legacy --print-config` of its two examples "printed with
    BIV_DATA_DIR=/data": the same comments and the same YAML (with the data folder's name)."""
    from biv.legacy import main

    assert "(Printed with `BIV_DATA_DIR=/data`" in (ROOT / "docs" / "legacy.md").read_text()
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("BIV_DATA_DIR", str(data))
    monkeypatch.chdir(tmp_path)  # nothing is written, but never into the checkout
    for block in legacy_doc_blocks():
        command = block.splitlines()[0].removeprefix("# biv legacy ")
        assert main([*command.split(), "--print-config"]) == 0
        printed = capsys.readouterr().out.replace(str(data), "/data")
        comments = [line for line in printed.splitlines() if line.startswith("#")]
        assert comments == [line for line in block.splitlines() if line.startswith("#")]
        assert yaml.safe_load(printed) == yaml.safe_load(block)


def test_readme_names_every_data_folder_the_paper_configs_read():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Reproducing the paper") :]
    (line,) = [line for line in section.splitlines() if "export BIV_DATA_DIR" in line]
    for name in ("paper.yaml", "paper-lite.yaml"):
        text = (ROOT / "config" / name).read_text()
        for folder in re.findall(r"(?m)^\s+path: \$\{BIV_DATA_DIR\}/([\w-]+)", text):
            assert f"{folder}/" in line, f"config/{name} reads $BIV_DATA_DIR/{folder}"


def test_the_resplit_config_is_paper_lites_bike_part_split_per_run():
    """config/paper-lite-resplit.yaml measures one change: every block it has is paper-lite's
    (its Bike entries), except the Bike data's split_seed (and the figure's and report's words)."""
    lite = yaml.safe_load((ROOT / "config" / "paper-lite.yaml").read_text())
    resplit = yaml.safe_load((ROOT / "config" / "paper-lite-resplit.yaml").read_text())
    assert resplit["datasets"]["bike"] == {**lite["datasets"]["bike"], "split_seed": "run"}
    assert lite["datasets"]["bike"]["split_seed"] == 0
    for block in ("noise", "models", "losses", "experiments"):
        assert resplit[block] == {name: lite[block][name] for name in resplit[block]}, block
    assert set(resplit["experiments"]) == {"bike", "bike-clean"}
    (panel,) = resplit["figures"]["paper"]["panels"]
    (lite_panel,) = [p for p in lite["figures"]["paper"]["panels"] if p["experiment"] == "bike"]
    assert {**panel, "title": lite_panel["title"]} == lite_panel
    assert resplit["reproduction"]["panels"] == {"bike": lite["reproduction"]["panels"]["bike"]}


def test_the_seeds_config_is_paper_lites_noisy_experiments_with_30_seeds():
    """config/paper-lite-seeds.yaml (the coverage measurement's populations) changes only the
    seeds of paper-lite's noisy experiments and which of their losses it trains."""
    lite = yaml.safe_load((ROOT / "config" / "paper-lite.yaml").read_text())
    seeds = yaml.safe_load((ROOT / "config" / "paper-lite-seeds.yaml").read_text())
    for block in ("datasets", "noise", "models", "losses"):
        assert seeds[block] == {name: lite[block][name] for name in seeds[block]}, block
    assert set(seeds["experiments"]) == {"utkf", "bike"}
    for name, experiment in seeds["experiments"].items():
        assert experiment["seeds"] == list(range(1, 31))
        assert set(experiment["losses"]) <= set(lite["experiments"][name]["losses"])
        assert {**experiment, "seeds": None, "losses": None} == {
            **lite["experiments"][name],
            "seeds": None,
            "losses": None,
        }
