"""The GPU check: what a session with a lent GPU runs first, in one command, on a bare machine.

    bash bench/gpu_check.sh OUT     # = PYTHONPATH=src python3 bench/gpu_check.py --out OUT

It needs ``python3`` with torch, torchvision, numpy, pandas and pyyaml, and the working tree:
nothing is installed and nothing outside the tree is read (its data are synthetic, made in a
scratch folder). Every item prints as PASS, FAIL, INFO or NOT RUN with its measured value and
tolerance; OUT/gpu_check.log holds the output and OUT/gpu_check.json the verdict (versions,
items, section times, measured step times). The sections (bench/gpu_check_sections.py): versions;
TF32 (float32 against float64); one training step against float64 (MLP, CNN, ResNet-18 packs);
host syncs; CUDA graphs through ``train_pack``; failures injected in a capture's warm-up and
capture, each in a process of its own; ``train_pack`` on CUDA against the CPU and bf16
evaluation; full-size UTKFace images; step times and the GPU-hours of config/paper.yaml; the
test files of the CUDA code.

Without a GPU it is its own rehearsal: every section runs on the CPU at reduced size up to its
first CUDA-only call, whose items are NOT RUN. Exit status: 0 every item passed on a GPU; 1 an
item failed (a crashed section fails its remaining items); 2 no GPU, the rehearsal passed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from gpu_check_report import SECTIONS, Check, exit_status, run_sections, write_verdict


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="folder for gpu_check.log and gpu_check.json")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a new temporary one)")
    parser.add_argument("--only", nargs="+", metavar="SECTION", help="run these sections only")
    parser.add_argument("--inject", choices=["warm-up", "capture"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    import gpu_check_sections  # registers the sections; imports torch

    if args.inject:  # a child process of section "graph failures"
        return gpu_check_sections.inject_failure(args.inject, work)
    if args.out is None:
        parser.error("--out is required")
    names = [s.name for s in SECTIONS]
    unknown = set(args.only or []) - set(names)
    if unknown:
        parser.error(f"--only: unknown sections {sorted(unknown)}; expected some of {names}")
    sections = [s for s in SECTIONS if not args.only or s.name in args.only]
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "gpu_check.log", "w") as log_file:

        def log(line: str) -> None:
            print(line, flush=True)
            print(line, file=log_file, flush=True)

        check = Check(work=work, log=log)
        start = time.perf_counter()
        log(f"GPU check: {'a GPU' if check.cuda else 'no GPU: the CPU rehearsal'}; work {work}")
        verdict = args.out / "gpu_check.json"
        run_sections(check, sections, lambda: write_verdict(verdict, check, sections, None))
        status = exit_status(check)
        counts = {s: sum(i.status == s for i in check.items) for s in ("PASS", "FAIL", "INFO")}
        counts["NOT RUN"] = len(check.items) - sum(counts.values())
        log(f"\n{time.perf_counter() - start:.0f} s; {counts}; exit status {status}")
        write_verdict(verdict, check, sections, status)
    return status


if __name__ == "__main__":
    sys.exit(main())
