"""Makes this Python a stand-in for the lent GPU machine's, for the project's own code (the GPU
check's CPU rehearsal, tests/test_gpu_check.py): an import made from the src/, bench/ or tests/
folder of the tree named by BIV_GPU_MACHINE_ROOT fails, as it would there, unless the module is
the standard library's, the project's, or installed by a distribution of packages.txt beside
this file. Imports made by the installed packages themselves are left alone. Python imports
this module at start-up when its folder is on PYTHONPATH."""

from __future__ import annotations

import importlib.abc
import importlib.metadata
import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = Path(os.environ["BIV_GPU_MACHINE_ROOT"]).resolve()
PROJECT = tuple(f"{ROOT / folder}{os.sep}" for folder in ("src", "bench", "tests"))


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


_LINES = (HERE / "packages.txt").read_text().splitlines()
DEVICE = {_normal(line) for line in _LINES if line.strip() and not line.startswith("#")}


class GpuMachineImports(importlib.abc.MetaPathFinder):
    """Refuses, for the project's code, the top-level modules the GPU machine lacks."""

    def __init__(self) -> None:
        self.distributions: dict[str, list[str]] | None = None  # module -> distributions

    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if path is not None or top in sys.stdlib_module_names or self._project(top):
            return None  # a submodule (its package was allowed), the standard library, ours
        importer = _importer()
        if not importer.startswith(PROJECT) or self._on_gpu_machine(top):
            return None
        raise ModuleNotFoundError(
            f"No module named {name!r} on the GPU machine (imported by {importer}; its "
            f"packages: {HERE / 'packages.txt'})",
            name=name,
        )

    @staticmethod
    def _project(top: str) -> bool:
        return any(
            (ROOT / folder / top).is_dir() or (ROOT / folder / f"{top}.py").is_file()
            for folder in ("src", "bench", "tests")
        )

    def _on_gpu_machine(self, top: str) -> bool:
        if self.distributions is None:
            self.distributions = importlib.metadata.packages_distributions()
        return any(_normal(dist) in DEVICE for dist in self.distributions.get(top, []))


def _importer() -> str:
    """The file of the code that runs the import statement (outside the import machinery)."""
    frame = sys._getframe(2)
    while frame is not None and (
        frame.f_code.co_filename.startswith("<frozen") or frame.f_code.co_filename == __file__
    ):
        frame = frame.f_back
    return frame.f_code.co_filename if frame is not None else ""


sys.meta_path.insert(0, GpuMachineImports())
