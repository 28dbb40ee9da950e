"""The operator console's main window."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QMainWindow

from evcms_desktop import APP_NAME


class MainWindow(QMainWindow):
    def __init__(self, station_name: str) -> None:
        super().__init__()
        self.setWindowTitle(f"{station_name} - {APP_NAME}")
        self.resize(1280, 800)
        placeholder = QLabel(station_name)
        self.setCentralWidget(placeholder)
