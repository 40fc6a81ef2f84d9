"""The GPU check's findings: items (PASS, FAIL, INFO or NOT RUN, each with the measured value
and its tolerance), the sections that make them, and the verdict file."""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

PASS, FAIL, INFO, NOT_RUN = "PASS", "FAIL", "INFO", "NOT RUN"


class NoGpu(Exception):
    """Raised by :meth:`Check.need_cuda` on a machine without CUDA: the rest of the section's
    items are not run."""


@dataclass
class Item:
    section: str
    name: str
    status: str
    measured: float | str | None = None
    tolerance: str | None = None
    note: str = ""

    def line(self) -> str:
        value = "" if self.measured is None else f": {_show(self.measured)}"
        bound = f" ({self.tolerance})" if self.tolerance else ""
        note = f"; {self.note}" if self.note else ""
        return f"[{self.status}] {self.section} / {self.name}{value}{bound}{note}"


@dataclass
class Section:
    name: str
    run: Callable[[Check], None]
    items: list[str]  # every item it reports, in order: those it did not reach are listed too
    wall_s: float | None = None
    outcome: str = "not started"


SECTIONS: list[Section] = []


def section(name: str, items: list[str]):
    """Register a section of the check and the items it reports."""

    def register(fn: Callable[[Check], None]):
        SECTIONS.append(Section(name, fn, items))
        return fn

    return register


@dataclass
class Check:
    """What the sections share: the device (CUDA, or the CPU in a rehearsal), a scratch folder,
    the items found so far, measured step times, and a log."""

    work: Path
    log: Callable[[str], None]
    cuda: bool = field(default_factory=torch.cuda.is_available)
    items: list[Item] = field(default_factory=list)
    measured: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    current: str = ""

    @property
    def device(self) -> torch.device:
        return torch.device("cuda" if self.cuda else "cpu")

    def size(self, full, reduced):
        """``full`` on a GPU, ``reduced`` in the CPU rehearsal."""
        return full if self.cuda else reduced

    def need_cuda(self) -> None:
        if not self.cuda:
            raise NoGpu

    def report(self, name: str, status: str, measured=None, tolerance=None, note="") -> None:
        item = Item(self.current, name, status, measured, tolerance, note)
        self.items.append(item)
        self.log(item.line())

    def within(self, name: str, measured: float, tolerance: float, note: str = "") -> None:
        """PASS if ``measured`` <= ``tolerance`` (NaN fails)."""
        status = PASS if measured <= tolerance else FAIL
        self.report(name, status, measured, f"at most {_show(tolerance)}", note)

    def above(self, name: str, measured: float, bound: float, note: str = "") -> None:
        """PASS if ``measured`` > ``bound``: a tolerance that catches what it should."""
        status = PASS if measured > bound else FAIL
        self.report(name, status, measured, f"more than {_show(bound)}", note)

    def holds(self, name: str, ok: bool, note: str = "", measured=None) -> None:
        self.report(name, PASS if ok else FAIL, measured, None, note)

    def info(self, name: str, measured=None, note: str = "") -> None:
        self.report(name, INFO, measured, None, note)


def run_sections(check: Check, sections: list[Section], done: Callable[[], None]) -> None:
    """Run each section, then call ``done``; its items not reported are NOT RUN after
    :class:`NoGpu`, or FAIL after a crash (a crash is a finding: the other sections still
    run)."""
    for sec in sections:
        check.current = sec.name
        check.log(f"\n== {sec.name}")
        start = time.perf_counter()
        try:
            sec.run(check)
            sec.outcome = "ran"
        except NoGpu:
            sec.outcome = "stopped at its first CUDA-only call (no GPU)"
        except Exception as err:  # a crash fails the section's remaining items
            sec.outcome = f"crashed: {err!r}"
            check.log(traceback.format_exc())
        sec.wall_s = time.perf_counter() - start
        reported = {item.name for item in check.items if item.section == sec.name}
        for name in sec.items:
            if name not in reported:
                status = NOT_RUN if sec.outcome.endswith("(no GPU)") else FAIL
                check.report(name, status, note=sec.outcome)
        unlisted = reported - set(sec.items)
        if unlisted:  # a section must declare its items, or a rehearsal would not list them
            check.report("items declared", FAIL, note=f"not declared: {sorted(unlisted)}")
        check.log(f"({sec.name}: {sec.wall_s:.1f} s, {sec.outcome})")
        done()


def exit_status(check: Check) -> int:
    """0: every item passed (or is information) on a GPU; 1: an item failed; 2: no GPU, and the
    rehearsal found nothing wrong."""
    if any(item.status == FAIL for item in check.items):
        return 1
    return 0 if check.cuda else 2


def write_verdict(path: Path, check: Check, sections: list[Section], status: int | None) -> None:
    """The verdict file; ``status`` None while sections are still to run (a check stopped by
    its time limit leaves the sections it finished)."""
    meaning = {0: "passed on a GPU", 1: "failed", 2: "no GPU: rehearsal passed"}
    verdict = {
        "exit_status": status,
        "meaning": meaning.get(status, "incomplete: the check did not finish"),
        "gpu": check.cuda,
        "versions": check.versions,
        "sections": {s.name: {"wall_s": s.wall_s, "outcome": s.outcome} for s in sections},
        "items": [asdict(item) for item in check.items],
        "measured": check.measured,
    }
    path.write_text(json.dumps(verdict, indent=1) + "\n")


def _show(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
