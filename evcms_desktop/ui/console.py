"""Starts the console: a Qt application whose asyncio loop (qasync) runs everything."""

from __future__ import annotations

import asyncio
import logging
import sys

import qasync
from PySide6.QtWidgets import QApplication

from evcms_desktop import APP_NAME
from evcms_desktop.app.config import AppConfig
from evcms_desktop.store.database import open_database
from evcms_desktop.store.stations import default_station
from evcms_desktop.ui.main_window import MainWindow

log = logging.getLogger(__name__)


def run_console(config: AppConfig, *, kiosk: bool = False) -> int:
    app = QApplication.instance() or QApplication(sys.argv)
    app.setApplicationName(APP_NAME)
    db = open_database(config.db_path)
    station = default_station()
    window = MainWindow(station.name)
    window.show()
    log.info("Console open on %s", config.db_path)

    async def until_closed() -> None:
        closed = asyncio.Event()
        app.aboutToQuit.connect(closed.set)
        await closed.wait()

    try:
        qasync.run(until_closed())
    finally:
        db.close()
    return 0
