"""Documentation and environment files stay true to the code: every config key is documented,
the pinned conda environment lists the same packages as pyproject.toml, every link of the
documentation resolves, and the README stays short enough to read top to bottom."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

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


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~ ]", requirement, maxsplit=1)[0].lower()


def test_conda_env_pins_the_packages_of_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "envs" / "biv.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    pinned = [p for p in pip if not p.startswith("-e")]
    assert all("==" in p for p in pinned), pinned
    assert {_name(p) for p in pinned} == {_name(d) for d in project["dependencies"]}
    assert "-e .." in pip  # the project itself


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
