"""The application's log file in the data directory, for the console and `--headless`
alike (no Qt here)."""

from __future__ import annotations

import faulthandler
import logging
import logging.handlers
import os
import sys
from pathlib import Path
from typing import TextIO

import peewee

from evcms_desktop.store.database import close_database

log = logging.getLogger(__name__)

APP_LOG = "evcms-desktop.log"
LOG_BYTES = 1_000_000
LOG_BACKUPS = 4
EXIT_STORE_UNWRITABLE = 75  # EX_TEMPFAIL: the store's files must be made writable again


def log_to_file(data_dir: Path) -> Path | None:
    """The application's log, also into the data directory (rotated, 5 x 1 MB)."""
    path = data_dir / APP_LOG
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
        )
    except OSError as exc:
        log.warning("No log file: %s", exc)
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    previous = sys.excepthook

    def hook(kind, value, tb) -> None:  # type: ignore[no-untyped-def]
        logging.getLogger("evcms_desktop").critical("Uncaught error", exc_info=(kind, value, tb))
        previous(kind, value, tb)

    sys.excepthook = hook
    return path


def log_fatal_signals(path: Path) -> TextIO | None:
    """Python's faulthandler writes a fatal signal (SIGSEGV, SIGBUS, SIGABRT) and every
    thread's stack into the log file: a crash inside SQLite leaves nothing else."""
    try:
        stream = path.open("a", encoding="utf-8")
    except OSError as exc:
        log.warning("Fatal signals are not logged: %s", exc)
        return None
    faulthandler.enable(file=stream, all_threads=True)
    return stream


def close_store_or_exit(db: peewee.Database) -> None:
    """Close the store at the end of a run. When its files can no longer be written,
    SQLite's last close would write into its shared-memory file and die of SIGBUS: the
    process ends here instead, after the log, with what was committed in the file."""
    if close_database(db):
        return
    logging.getLogger("evcms_desktop").critical(
        "The store's files cannot be written: ending without closing it (what was"
        " committed is kept); make them writable before the next start"
    )
    logging.shutdown()
    os._exit(EXIT_STORE_UNWRITABLE)
