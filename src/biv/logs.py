"""Logging set-up shared by the command line and the workflow scripts."""

from __future__ import annotations

import logging
import sys


def setup(path: str | None = None, level: int = logging.INFO) -> None:
    """Send log records to ``path`` (a Snakemake ``log:`` file) or to stderr."""
    handler = logging.FileHandler(path) if path else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
