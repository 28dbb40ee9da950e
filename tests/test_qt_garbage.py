"""Qt objects that only Python's collector frees are freed on the GUI thread.

A Python-owned QObject in a reference cycle (a window holding its asyncio tasks, a closed
qasync loop's timer) is destroyed when the collector runs, on whichever thread that is; on
a worker thread its timers cannot be stopped and the next processEvents() crashed the run
(SIGSEGV). tests/conftest.py collects a Qt test's garbage on the GUI thread when it ends.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

INNER_TESTS = """
import gc
import threading
import time

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QApplication


class Cycle(QObject):
    def __init__(self):
        super().__init__()
        self.me = self  # only the collector frees it
        self.startTimer(10)


def test_a_qt_test_leaves_a_cycle_with_a_timer(qapp):
    gc.disable()  # the collector happens not to run before the test ends
    Cycle()


def test_a_later_collection_on_a_worker_thread(qapp):
    worker = threading.Thread(target=gc.collect)
    worker.start()
    worker.join()
    gc.enable()
    for _ in range(20):
        time.sleep(0.02)
        QApplication.processEvents()
"""


def test_a_collection_on_a_worker_thread_finds_no_qt_garbage(tmp_path: Path) -> None:
    inner = tmp_path / "test_inner.py"
    inner.write_text(INNER_TESTS)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), str(inner)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "2 passed" in result.stdout
    assert "Timers cannot be stopped from another thread" not in result.stderr
