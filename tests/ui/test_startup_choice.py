"""How a console starts: a station PC's SQLite file runs the central system without asking;
a deployment's PostgreSQL database asks (run it here, or attach), remembers the choice if
told to, and asks again with --choose; --run-here and --attach skip the question."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from evcms_desktop.ui.dialogs.startup import (
    StartupChoice,
    StartupDialog,
    remembered_choice,
    startup_choice,
)
from tests.ui.conftest import run

ASKING = "Asking whether this console runs the central system or attaches"
OPEN = "Console open on"
DATABASE = "postgresql://ops@db.example:5432/evcms"


def _open_dialog() -> StartupDialog | None:
    shown = [w for w in QApplication.topLevelWidgets() if isinstance(w, StartupDialog)]
    return next((w for w in shown if w.isVisible()), None)


def test_the_choice_is_asked_remembered_when_told_and_asked_again(qtbot, qloop, tmp_path):
    settings = QSettings(str(tmp_path / "console.ini"), QSettings.Format.IniFormat)

    asked = qloop.create_task(startup_choice(DATABASE, settings))
    qtbot.waitUntil(lambda: _open_dialog() is not None, timeout=5000)
    dialog = _open_dialog()
    assert dialog.attach.isChecked()  # a deployment's database: attaching is the usual
    dialog.run_here.click()
    dialog.ok.click()  # not remembered
    assert run(qtbot, asked) is StartupChoice.RUN_HERE
    assert remembered_choice(settings, DATABASE) is None

    asked = qloop.create_task(startup_choice(DATABASE, settings))
    qtbot.waitUntil(lambda: _open_dialog() is not None, timeout=5000)
    dialog = _open_dialog()
    dialog.remember.setChecked(True)
    dialog.ok.click()
    assert run(qtbot, asked) is StartupChoice.ATTACH
    assert remembered_choice(settings, DATABASE) is StartupChoice.ATTACH

    # Next time nothing is asked; another database is asked about on its own.
    assert run(qtbot, startup_choice(DATABASE, settings)) is StartupChoice.ATTACH
    assert remembered_choice(settings, DATABASE.replace("evcms", "other")) is None

    # --choose forgets it and asks; cancelling starts nothing.
    asked = qloop.create_task(startup_choice(DATABASE, settings, ask_again=True))
    qtbot.waitUntil(lambda: _open_dialog() is not None, timeout=5000)
    _open_dialog().reject()
    assert run(qtbot, asked) is None
    assert remembered_choice(settings, DATABASE) is None


def test_a_damaged_remembered_choice_is_asked_again(tmp_path):
    settings = QSettings(str(tmp_path / "console.ini"), QSettings.Format.IniFormat)
    settings.setValue("startup/" + "0" * 24, "x")
    assert remembered_choice(settings, DATABASE) is None


class Console:
    """The real program in a subprocess, its log read line by line."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        env = {
            **os.environ,
            "QT_QPA_PLATFORM": "offscreen",
            "HOME": str(tmp_path),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "XDG_DATA_HOME": str(tmp_path / "data"),
        }
        command = [sys.executable, "-m", "evcms_desktop", *args, "--port", "0"]
        self.process = subprocess.Popen(
            [*command, "--file-port", "off"], env=env, stderr=subprocess.PIPE, text=True
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 90) -> None:
        while not any(text in line for line in self.seen):
            try:
                self.seen.append(self.lines.get(timeout=timeout))
            except queue.Empty:
                pytest.fail(f"{text!r} not logged; the log was: {''.join(self.seen)}")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        finally:
            if self.process.poll() is None:
                self.process.kill()


def test_a_station_pc_file_runs_the_central_system_without_asking(tmp_path):
    console = Console(tmp_path, "--db", str(tmp_path / "evcms.sqlite3"))
    console.wait_for(OPEN)
    assert console.stop() == 128 + signal.SIGTERM  # a terminated program
    assert not [line for line in console.seen if ASKING in line]
    assert [line for line in console.seen if "Central system listening" in line], console.seen


@pytest.mark.postgresql
def test_a_deployment_database_asks_unless_run_here_is_given(tmp_path, postgresql_url):
    asked = Console(tmp_path, "--db", postgresql_url)
    asked.wait_for(ASKING)
    asked.stop()
    assert not [line for line in asked.seen if OPEN in line]

    here = Console(tmp_path, "--db", postgresql_url, "--run-here")
    here.wait_for(OPEN)
    assert here.stop() == 128 + signal.SIGTERM
    assert not [line for line in here.seen if ASKING in line]
