"""The station PC: one console per database, a crash log shown in Help at the next start,
autostart at login, and Help with the files and shortcuts."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from PySide6.QtGui import QKeySequence

from evcms_desktop.app.station_pc import (
    CRASH_LOG,
    InstanceGuard,
    enable_crash_log,
    previous_crash,
)
from evcms_desktop.ui.dialogs.help import StationFiles


def test_a_second_console_on_the_same_database_brings_the_first_to_front(qtbot, tmp_path):
    first = InstanceGuard(f"{(tmp_path / 'evcms.sqlite3').resolve()}|")
    assert first.acquire()
    other = InstanceGuard(f"{(tmp_path / 'other.sqlite3').resolve()}|")
    assert other.acquire()  # another database: its own console
    try:
        with qtbot.waitSignal(first.raise_requested, timeout=5000):
            result = subprocess.run(
                [sys.executable, "-m", "evcms_desktop", "--db", str(tmp_path / "evcms.sqlite3"),
                 "--port", "0"],
                capture_output=True, text=True, check=False, timeout=120,
                env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
            )  # fmt: skip
        assert result.returncode == 3
        assert result.stderr.strip().splitlines() == [
            f"evcms-desktop: a console is already running on {tmp_path / 'evcms.sqlite3'};"
            " it was brought to the front."
        ]
    finally:
        first.release()
        other.release()
    again = InstanceGuard(f"{(tmp_path / 'evcms.sqlite3').resolve()}|")
    assert again.acquire()  # released: the next console starts
    again.release()


def test_a_crash_is_written_and_shown_once_at_the_next_start(tmp_path):
    crash = textwrap.dedent(f"""
        import faulthandler, pathlib
        from evcms_desktop.app.station_pc import enable_crash_log
        enable_crash_log(pathlib.Path({str(tmp_path)!r}))
        faulthandler._sigsegv()
    """)
    result = subprocess.run([sys.executable, "-c", crash], capture_output=True, check=False)
    assert result.returncode != 0
    report = previous_crash(tmp_path)
    assert report is not None and "Fatal Python error" in report
    assert not (tmp_path / CRASH_LOG).exists()
    assert (tmp_path / (CRASH_LOG + ".old")).exists()
    assert previous_crash(tmp_path) is None  # told once
    stream = enable_crash_log(tmp_path)
    assert stream is not None
    stream.close()
    import faulthandler

    faulthandler.disable()


def test_help_shows_the_files_the_crash_and_the_shortcuts(qtbot, window_factory, tmp_path):
    window = window_factory()
    log_file = tmp_path / "evcms-desktop.log"
    log_file.write_text("line one\nthe last line\n")
    database = str(tmp_path / "evcms.sqlite3")
    window.set_files(StationFiles(database, tmp_path, log_file, "Fatal Python error: X"))
    assert window.notifications_model.notices()[0].message.startswith(
        "The console stopped unexpectedly last time"
    )
    assert window.help_action.shortcut() == QKeySequence(QKeySequence.StandardKey.HelpContents)
    dialog = window.show_help()
    assert dialog.tabs.currentWidget() is dialog.crash
    assert "Fatal Python error: X" in dialog.crash.toPlainText()
    assert "the last line" in dialog.log.toPlainText()
    about = dialog.about.text()
    assert str(tmp_path / "evcms.sqlite3") in about and "Ctrl+F" in about


def test_ctrl_f_finds_a_booking_and_ctrl_digits_change_tabs(qtbot, window_factory):
    window = window_factory()
    window.find_booking()
    assert window.tabs.currentWidget() is window.bookings
    assert window.bookings.search.hasFocus() or not window.isActiveWindow()
    shortcuts = {a.shortcut().toString() for a in window.findChildren(type(window.help_action))}
    assert {"Ctrl+1", "Ctrl+8", "Ctrl+F", "F5", "Ctrl+N"} <= shortcuts


def test_autostart_writes_an_xdg_entry_for_this_database(tmp_path):
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    db = tmp_path / "station.sqlite3"

    def autostart(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "evcms_desktop", "--db", str(db), "autostart", *args],
            capture_output=True, text=True, check=False, timeout=60, env=env,
        )  # fmt: skip

    assert autostart("status").stdout.strip() == "Does not start at login."
    enabled = autostart("enable", "--kiosk")
    assert enabled.returncode == 0, enabled.stderr
    entry = (tmp_path / "config" / "autostart" / "evcms-desktop.desktop").read_text()
    assert "Type=Application" in entry
    exec_line = next(line for line in entry.splitlines() if line.startswith("Exec="))
    assert exec_line.endswith(f"--db {db} --kiosk")
    assert autostart("status").stdout.startswith("Starts at login")
    assert autostart("disable").returncode == 0
    assert not (tmp_path / "config" / "autostart" / "evcms-desktop.desktop").exists()
