"""Help: what the program is, where its files are, its shortcuts, its own log and the last
crash report."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from evcms_desktop import APP_NAME, __version__

SHORTCUTS = (
    ("Ctrl+N", "New booking"),
    ("Ctrl+F", "Find a booking by its ID (Bookings tab)"),
    ("Ctrl+1 … Ctrl+8", "Go to a tab"),
    ("F5", "Read bookings, sessions and counters again"),
    ("F1", "This help"),
    ("Ctrl+Q", "Quit (asks first while chargers are connected)"),
)


@dataclass(frozen=True)
class StationFiles:
    """Where this console keeps its things, and what its last run left behind."""

    database: str  # an SQLite file, or a PostgreSQL URL without its password
    data_dir: Path  # certificates, crash log, application log
    log_file: Path | None = None
    crash_report: str | None = None  # what the last run wrote when it died


def tail(path: Path, lines: int = 400) -> str:
    """The last lines of a log file ('' when there is none)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as stream:
            return "".join(stream.readlines()[-lines:])
    except OSError:
        return ""


class HelpDialog(QDialog):
    def __init__(
        self, files: StationFiles, log_text: str = "", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"About {APP_NAME}")
        self.resize(760, 520)
        rows = [
            ("Database", files.database),
            ("Data directory (certificates, crash log)", files.data_dir),
            ("Application log", files.log_file or "not written (see the terminal)"),
        ]
        where = "".join(
            f"<tr><td>{html.escape(name)}</td><td><code>{html.escape(str(path))}</code></td></tr>"
            for name, path in rows
        )
        keys = "".join(
            f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(what)}</td></tr>"
            for k, what in SHORTCUTS
        )
        self.about = QLabel(
            f"<h2>{APP_NAME} {__version__}</h2>"
            "<p>An operator console for EV charging sites with its own OCPP 1.6J central"
            " system: bookings whose IDs drivers enter at the charger, charging plans priced"
            " by time of use, and a live view of chargers, sessions and demand.</p>"
            f"<h3>Where things are</h3><table cellspacing=6>{where}</table>"
            f"<h3>Shortcuts</h3><table cellspacing=4>{keys}</table>"
        )
        self.about.setWordWrap(True)
        self.log = QPlainTextEdit(log_text or "The log is empty.")
        self.log.setReadOnly(True)
        self.crash = QPlainTextEdit(
            files.crash_report or "The last run ended normally: no crash report."
        )
        self.crash.setReadOnly(True)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.about, "About")
        self.tabs.addTab(self.log, "Application log")
        self.tabs.addTab(self.crash, "Last crash report")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(buttons)

    def show_crash(self) -> None:
        self.tabs.setCurrentWidget(self.crash)
