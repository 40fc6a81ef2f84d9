"""Documentation and environment files stay true to the code: every config key is documented,
and the pinned conda environment lists the same packages as pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

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
