"""A scratch copy of the repository for benchmarks that run the workflow: a git worktree of HEAD
with the working tree's current files copied over it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), *args], check=True, capture_output=True, text=True
    ).stdout


def make_scratch(scratch: Path) -> None:
    """A worktree of HEAD with the working tree's current files copied over it."""
    if scratch.exists():
        raise SystemExit(
            f"{scratch} exists: remove it (git worktree remove --force) or pick another"
        )
    git("worktree", "add", "--detach", str(scratch), "HEAD")
    for name in git("ls-files", "--deleted", "-z").split("\0"):
        if name:
            (scratch / name).unlink(missing_ok=True)
    for name in git("ls-files", "--cached", "--others", "--exclude-standard", "-z").split("\0"):
        source = REPO / name
        if name and source.is_file():
            (scratch / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, scratch / name)


def remove_scratch(scratch: Path) -> None:
    git("worktree", "remove", "--force", str(scratch))
