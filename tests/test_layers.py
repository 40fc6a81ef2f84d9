"""The package's modules form layers: no import cycle between them, counting imports inside
functions (which hide cycles from Python) and leaving out ``if TYPE_CHECKING:`` blocks."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.AST, modules: set[str]) -> set[str]:
    """The biv modules a module's code imports (a name imported from a package counts as the
    submodule when there is one)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            node.body = []  # imports for type annotations only
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("biv"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("biv")}
    return found & modules


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in SRC.joinpath("biv").rglob("*.py")}
    graph = {}
    for name, path in files.items():
        deps = imported(ast.parse(path.read_text()), set(files))
        # a package's __init__ re-exporting its own submodules is not a layer above them
        graph[name] = {d for d in deps if d != name and not d.startswith(f"{name}.")}
    return graph


def test_no_import_cycles():
    graph, state, cycles = import_graph(), {}, []

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for dep in sorted(graph[node]):
            if state.get(dep) == "open":
                cycles.append(" -> ".join([*path[path.index(dep) :], dep]))
            elif dep not in state:
                visit(dep, [*path, dep])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, cycles


#: The rooms, lowest first (the package's docstring): a module may import its own room and the
#: rooms below it, never one above. Rooms of one rank do not import each other.
RANKS = [
    {"biv", "biv.atomic", "biv.logs", "biv.provenance"},
    {"biv.losses"},
    {"biv.config"},
    {"biv.data", "biv.noise"},
    {"biv.train"},
    {"biv.report"},
    {"biv.workflow"},
    {"biv.legacy"},
    {"biv.cli"},
]


def room(module: str) -> tuple[int, str]:
    for rank, rooms in enumerate(RANKS):
        for name in rooms:
            if module == name or (name != "biv" and module.startswith(f"{name}.")):
                return rank, name
    raise AssertionError(f"{module} is in no room: add it to RANKS")


def test_the_top_level_holds_few_modules():
    top = {p.name for p in SRC.joinpath("biv").glob("*.py")}
    assert len(top) <= 8, sorted(top)


def test_no_module_imports_a_higher_room_or_a_sibling():
    wrong = []
    for module, deps in import_graph().items():
        rank, name = room(module)
        for dep in deps:
            dep_rank, dep_name = room(dep)
            if dep_rank > rank or (dep_rank == rank and dep_name != name):
                wrong.append(f"{module} -> {dep}")
    assert not wrong, wrong


@pytest.mark.parametrize("low", ["biv.legacy", "biv.train", "biv.config", "biv.data"])
def test_lower_layers_do_not_import_the_command_line(low):
    graph = import_graph()
    below = {m for m in graph if m == low or m.startswith(f"{low}.")}
    assert not {m for m in below if "biv.cli" in graph[m]}
