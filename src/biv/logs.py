"""Logging set-up shared by the command line and the workflow scripts.

``setup(path)`` sends log records to ``path`` (a Snakemake ``log:`` file) and ``setup()`` to
stderr, both as ``<time> <LEVEL> <logger>: <message>``. Either way an uncaught exception (also
one in a thread) is logged as a CRITICAL record with its full traceback, so a failing job's log
says why it failed; with a file, Python's usual traceback still goes to stderr as well.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import traceback

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

log = logging.getLogger(__name__)

_handler: logging.Handler | None = None  # the root handler of the last setup() call
_echo = True  # also run the previous hook (Python's traceback on stderr) after logging
_previous_hook = sys.excepthook
_previous_thread_hook = threading.excepthook


class _Stderr(logging.StreamHandler):
    """A stream handler writing to whatever ``sys.stderr`` is at the time of each record."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def setup(path: str | os.PathLike | None = None, level: int = logging.INFO) -> None:
    """Send log records to ``path`` (a Snakemake ``log:`` file, appended to) or to stderr, and
    log uncaught exceptions with their traceback.

    Calling it again replaces the handler of the previous call; handlers added by others (e.g.
    pytest's) are kept."""
    global _handler, _echo
    handler = logging.FileHandler(path) if path else _Stderr()
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
        _handler.close()
    root.addHandler(handler)
    root.setLevel(level)
    _handler = handler
    _echo = bool(path)
    _install_hooks()


def _install_hooks() -> None:
    global _previous_hook, _previous_thread_hook
    if sys.excepthook is not _excepthook:
        _previous_hook, sys.excepthook = sys.excepthook, _excepthook
    if threading.excepthook is not _thread_excepthook:
        _previous_thread_hook, threading.excepthook = threading.excepthook, _thread_excepthook


def _describe(exc_type, exc) -> str:
    return traceback.format_exception_only(exc_type, exc)[-1].strip()


def _excepthook(exc_type, exc, tb) -> None:
    log.critical("uncaught exception: %s", _describe(exc_type, exc), exc_info=(exc_type, exc, tb))
    # Logged to stderr already (setup() without a path): skip Python's default copy.
    if _echo or _previous_hook is not sys.__excepthook__:
        _previous_hook(exc_type, exc, tb)


def _thread_excepthook(args) -> None:
    if not issubclass(args.exc_type, SystemExit):  # ignored by Python, too
        log.critical(
            "uncaught exception in thread %s: %s",
            args.thread.name if args.thread is not None else "?",
            _describe(args.exc_type, args.exc_value),
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
        )
        if not _echo and _previous_thread_hook is threading.__excepthook__:
            return
    _previous_thread_hook(args)
