"""SIGTERM (and Ctrl-C) end the console quietly, with the exit status of a terminated
program: also while the first start's password dialog is open, or checking a password."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import qasync
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from evcms_desktop.app.cli import build_parser, config_from_args
from evcms_desktop.app.console import serve_window
from evcms_desktop.store.database import open_database
from evcms_desktop.ui.dialogs.sign_in import SignInDialog
from evcms_desktop.ui.main_window import MainWindow

TERMINATED = 128 + signal.SIGTERM


def _first_start_dialog() -> SignInDialog | None:
    for widget in QApplication.topLevelWidgets():
        for dialog in widget.findChildren(SignInDialog):
            if dialog.isVisible() and dialog.first_time:
                return dialog
    return None


def test_sigterm_at_the_first_start_password_dialog_ends_quietly(tmp_path: Path):
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    command = [sys.executable, "-m", "evcms_desktop", "--db", str(tmp_path / "evcms.sqlite3")]
    process = subprocess.Popen(
        [*command, "--port", "0", "--file-port", "off"],
        env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line or "Console open" in line:
                break
        assert "Console open" in line, line
        process.send_signal(signal.SIGTERM)
        after = process.stderr.read()
        assert process.wait(timeout=60) == TERMINATED
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    logged = [line for line in after.splitlines() if "propagateSizeHints" not in line]
    assert len(logged) <= 1, after
    assert "Traceback" not in after and "Ending on SIGTERM" in after


def test_sigterm_while_the_first_password_is_being_hashed_ends_quietly(qapp, tmp_path, capfd):
    """The sign-in's password check, still running in its thread, was left pending: the
    loop destroyed it and its dialog's buttons with tracebacks."""
    db_path = tmp_path / "evcms.sqlite3"
    config = config_from_args(
        build_parser().parse_args(["--db", str(db_path), "--port", "0", "--file-port", "off"])
    )
    db = open_database(config.database, station_name="Test Station")
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    qapp.setQuitOnLastWindowClosed(False)  # as the console's own run does

    async def scenario() -> tuple[int, SignInDialog]:
        serving = asyncio.ensure_future(serve_window(qapp, config, db, False))
        while (dialog := _first_start_dialog()) is None:
            await asyncio.sleep(0.02)
        dialog.password.setText("a long enough password")
        dialog.repeat.setText("a long enough password")
        dialog.ok.click()
        assert dialog.task is not None and not dialog.task.done()
        os.kill(os.getpid(), signal.SIGTERM)
        return await serving, dialog

    try:
        with loop:
            status, dialog = loop.run_until_complete(asyncio.wait_for(scenario(), 60))
        assert status == TERMINATED
        assert dialog.task is not None and dialog.task.done()
        # Its window is closed: left open, its timers went on reading a store gone by then.
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
        assert not [w for w in windows if w.isVisible()]
        assert not [t for w in windows for t in w.findChildren(QTimer) if t.isActive()]
    finally:
        asyncio.set_event_loop(None)
        qapp.setQuitOnLastWindowClosed(True)
        for widget in QApplication.topLevelWidgets():
            widget.hide()
        db.close()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "destroyed but it is pending" not in err
