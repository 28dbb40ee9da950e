"""Colours and the style sheet shared by the console and the kiosk."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtGui import QColor

# Status colours: (background, text). Status is always also written out, never colour alone.
STATUS_COLOURS: dict[str, tuple[str, str]] = {
    "Available": ("#dcf5e3", "#13612e"),
    "Preparing": ("#fff1cc", "#7a5600"),
    "Charging": ("#d6e8ff", "#0b4a8f"),
    "SuspendedEV": ("#fff1cc", "#7a5600"),
    "SuspendedEVSE": ("#fff1cc", "#7a5600"),
    "Finishing": ("#e8e0ff", "#4b2d91"),
    "Reserved": ("#e8e0ff", "#4b2d91"),
    "Unavailable": ("#ececec", "#4d4d4d"),
    "Faulted": ("#ffd9d6", "#9c1c12"),
    "Offline": ("#ececec", "#6b6b6b"),
    "Pending approval": ("#ffe6f4", "#8a1a5c"),
}

BOOKING_COLOURS: dict[str, str] = {
    "confirmed": "#3d7dd8",
    "checked_in": "#7b4fd0",
    "charging": "#1f9d55",
    "completed": "#8a9aa8",
    "cancelled": "#c9ced3",
    "no_show": "#d9534f",
}

PEAK_ON = "#f08c2e"
PEAK_ON_LIGHT = "#fbd7b4"
PEAK_OFF = "#2c8c8c"
PEAK_OFF_LIGHT = "#b6dede"
PEAK_SHADE = QColor(240, 140, 46, 40)
NOW_LINE = "#d62828"
POWER_PEN = "#0b6fd6"
SOC_PEN = "#1f9d55"


def status_colours(status: str) -> tuple[QColor, QColor]:
    background, text = STATUS_COLOURS.get(status, ("#ffffff", "#202020"))
    return QColor(background), QColor(text)


CONSOLE_STYLE = """
QLabel#counterValue { font-size: 22pt; font-weight: 600; color: #1b2733; }
QLabel#counterTitle { color: #5b6b7a; font-size: 9pt; }
QFrame#counter { background: #ffffff; border: 1px solid #dde3e8; border-radius: 8px; }
QFrame#planCard { background: #ffffff; border: 1px solid #cfd8e0; border-radius: 10px; }
QFrame#planCard[cheapest="true"] { border: 2px solid #1f9d55; background: #f3fbf6; }
QLabel#planTitle { font-size: 13pt; font-weight: 600; }
QLabel#planTimes { font-size: 15pt; font-weight: 600; color: #1b2733; }
QLabel#planTotal { font-size: 20pt; font-weight: 700; color: #1b2733; }
QLabel#badge { background: #1f9d55; color: white; border-radius: 9px; padding: 2px 8px;
               font-weight: 600; }
QLabel#peakOn { color: #a85400; font-weight: 600; }
QLabel#peakOff { color: #1d6b6b; font-weight: 600; }
QLabel#fieldError { color: #b3261e; }
QLabel#bookingCode { font-family: "DejaVu Sans Mono", monospace; font-size: 30pt;
                     font-weight: 700; letter-spacing: 4px; color: #0b4a8f;
                     background: #eef5ff; border: 1px dashed #7aa7e0; border-radius: 8px;
                     padding: 10px 18px; }
QLabel#sectionTitle { font-size: 12pt; font-weight: 600; }
QLabel#confirmTitle { font-size: 18pt; font-weight: 700; color: #13612e; }
QLabel#codeLabel { color: #5b6b7a; }
QLabel#bookingQr { background: white; }
QLabel#actionResult { padding: 6px; border-radius: 6px; }
"""

KIOSK_STYLE = """
QWidget { font-size: 18pt; }
QPushButton { min-height: 72px; padding: 8px 28px; border-radius: 12px;
              background: #0b6fd6; color: white; font-weight: 600; }
QPushButton:disabled { background: #9fb7cf; }
QPushButton#secondary { background: #e3e9ef; color: #1b2733; }
QPushButton#staff { min-height: 36px; font-size: 11pt; background: transparent; color: #8a9aa8; }
QLineEdit, QDateEdit, QTimeEdit, QSpinBox, QComboBox, QDoubleSpinBox { min-height: 56px; }
QAbstractSpinBox::up-button, QAbstractSpinBox::down-button { width: 56px; }
QDateEdit::drop-down, QComboBox::drop-down { width: 56px; }
QLabel#kioskTitle { font-size: 28pt; font-weight: 700; color: #1b2733; }
QLabel#confirmTitle { font-size: 32pt; }
QLabel#codeLabel { font-size: 16pt; }
QLabel#bookingCode { font-size: 44pt; }
QLabel#kioskHint { color: #5b6b7a; }
QFrame#planCard QLabel { font-size: 14pt; }
QFrame#planCard QLabel#planTitle { font-size: 16pt; font-weight: 600; }
QFrame#planCard QLabel#planTimes { font-size: 22pt; font-weight: 700; }
QFrame#planCard QLabel#planTotal { font-size: 28pt; font-weight: 700; }
QFrame#planCard QLabel#badge { font-size: 12pt; }
QFrame#planCard QLabel#counterTitle { font-size: 12pt; }
QFrame#planCard QPushButton { min-height: 56px; }
"""


ICON_NAME = "evcms-desktop.svg"


def icon_path() -> Path | None:
    """resources/ next to the package (a checkout) or inside a PyInstaller bundle."""
    roots = [Path(__file__).resolve().parents[2], Path(getattr(sys, "_MEIPASS", "."))]
    return next((p for r in roots if (p := r / "resources" / ICON_NAME).exists()), None)
