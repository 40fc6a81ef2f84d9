"""biv.logs: records and uncaught exceptions (with their traceback) land in the job log."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest

from biv import logs


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )


def test_uncaught_exception_is_logged_with_traceback(tmp_path):
    log_file = tmp_path / "job.log"
    result = run_python(
        f"""
        import logging
        from biv import logs
        logs.setup({str(log_file)!r})
        logging.getLogger("biv.job").info("starting")
        def inner():
            raise ValueError("boom-123")
        inner()
        """
    )
    assert result.returncode != 0
    text = log_file.read_text()
    assert "INFO biv.job: starting" in text
    assert "CRITICAL biv.logs: uncaught exception: ValueError: boom-123" in text
    assert "Traceback (most recent call last)" in text
    assert "in inner" in text  # the full traceback, not just the message
    assert text.rstrip().endswith("ValueError: boom-123")
    # Python's own traceback still goes to stderr (Snakemake's console).
    assert "Traceback" in result.stderr and "ValueError: boom-123" in result.stderr


def test_handled_records_land_in_the_file(tmp_path):
    log_file = tmp_path / "job.log"
    result = run_python(
        f"""
        import logging
        from biv import logs
        logs.setup({str(log_file)!r})
        log = logging.getLogger("biv.job")
        log.debug("hidden-000")
        log.info("handled-456")
        try:
            raise KeyError("caught-789")
        except KeyError:
            log.exception("recovered")
        """
    )
    assert result.returncode == 0, result.stderr
    text = log_file.read_text()
    assert "INFO biv.job: handled-456" in text
    assert "ERROR biv.job: recovered" in text and "KeyError: 'caught-789'" in text
    assert "hidden-000" not in text and "uncaught" not in text
    assert result.stderr == ""


def test_stderr_mode_logs_the_traceback_once():
    result = run_python(
        """
        from biv import logs
        logs.setup()
        raise RuntimeError("cli-failure")
        """
    )
    assert result.returncode != 0
    assert "CRITICAL biv.logs: uncaught exception: RuntimeError: cli-failure" in result.stderr
    assert result.stderr.count("Traceback (most recent call last)") == 1


def test_uncaught_exception_in_a_thread_is_logged(tmp_path):
    log_file = tmp_path / "job.log"
    result = run_python(
        f"""
        import threading
        from biv import logs
        logs.setup({str(log_file)!r})
        def work():
            raise OSError("thread-failure")
        thread = threading.Thread(target=work, name="worker-1")
        thread.start()
        thread.join()
        """
    )
    text = log_file.read_text()
    assert "uncaught exception in thread worker-1: OSError: thread-failure" in text
    assert "Traceback (most recent call last)" in text
    assert "thread-failure" in result.stderr


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    hooks = sys.excepthook, logs.threading.excepthook
    yield
    if logs._handler is not None:
        root.removeHandler(logs._handler)
        logs._handler.close()
        logs._handler = None
    root.handlers[:] = handlers
    root.setLevel(level)
    sys.excepthook, logs.threading.excepthook = hooks


def test_setup_again_replaces_its_handler_and_keeps_others(tmp_path, caplog, restore_logging):
    logs.setup(tmp_path / "first.log")
    logs.setup(tmp_path / "second.log")
    logs.setup(tmp_path / "second.log")
    ours = [h for h in logging.getLogger().handlers if type(h) is logging.FileHandler]
    assert len(ours) == 1
    logging.getLogger("biv.job").info("once-321")
    assert (tmp_path / "first.log").read_text() == ""
    assert (tmp_path / "second.log").read_text().count("once-321") == 1
    assert "once-321" in caplog.text  # pytest's handler was kept
    assert sys.excepthook is logs._excepthook
