"""Names from content: readable where short, a short content hash where not.

Names become folder names and Snakemake wildcards, so they use letters, digits, '_' and '-'.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

SWEEP_SEP = "__"
MAX_READABLE = 60
_WORD = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


def canonical(value: Any) -> str:
    """One text per value: sorted keys, and integral floats written as integers (1.0 == 1)."""
    return json.dumps(_normal(value), sort_keys=True, separators=(",", ":"))


def normal(value: Any) -> Any:
    """Plain data (a sweep value as written) in one form, as :func:`canonical` writes it:
    mappings with sorted keys, integral floats as integers, tuples as lists."""
    return json.loads(canonical(value))


def _normal(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): _normal(x) for k, x in value.items()}
    if isinstance(value, list | tuple):
        return [_normal(x) for x in value]
    return value


def content_hash(value: Any) -> str:
    return hashlib.sha256(canonical(value).encode()).hexdigest()[:8]


def label(path: str) -> str:
    """The part of a dotted path that names it: losses.biv.epsilon -> epsilon,
    noise.components.0 -> components0, training.batch_size -> batchsize."""
    parts = path.split(".")
    text = parts[-1] if not parts[-1].isdigit() or len(parts) < 2 else "".join(parts[-2:])
    return re.sub(r"[^A-Za-z0-9]", "", text)


def value_text(value: Any) -> str | None:
    """A short readable fragment for a value, or None when there is none."""
    value = _normal(value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value).replace("-", "m")
    if isinstance(value, float):
        return repr(value).replace("-", "m").replace(".", "p").replace("+", "")
    if isinstance(value, str) and _WORD.match(value):
        return value
    if isinstance(value, dict) and value:
        parts = [(k, value_text(x)) for k, x in sorted(value.items())]
        if all(_WORD.match(k) and t is not None for k, t in parts):
            return "-".join(f"{k}{t}" for k, t in parts)
    return None


def readable(assignment: dict[str, Any]) -> str:
    """``label-value`` fragments joined by '_', or labels and a content hash when too long."""
    texts = [(label(path), value_text(value)) for path, value in assignment.items()]
    name = "_".join(f"{lab}-{text}" for lab, text in texts)
    if any(text is None for _, text in texts) or len(name) > MAX_READABLE:
        name = "-".join(lab for lab, _ in texts)[:40] + f"-h{content_hash(assignment)}"
    return name


class Registry:
    """Derived names handed out so far: one name never stands for two contents."""

    def __init__(self) -> None:
        self._content: dict[str, str] = {}

    def name(self, base: str, assignment: dict[str, Any], content: Any) -> str:
        text = canonical(content)
        name = f"{base}{SWEEP_SEP}{readable(assignment)}"
        if self._content.setdefault(name, text) != text:
            name = f"{base}{SWEEP_SEP}h{content_hash(content)}"
            self._content.setdefault(name, text)
        return name
