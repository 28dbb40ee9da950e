"""The application's log file in the data directory, for the console and `--headless`
alike (no Qt here)."""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import logging.handlers
import os
import re
import socket
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


class QuietFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log file that, when it cannot be written (a full disk), says so in one
    line on stderr instead of a traceback per record, keeps the program going, and says
    when it writes again."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8")
        self.failing = False
        self._failed = False  # the record being written could not be

    def emit(self, record: logging.LogRecord) -> None:
        self._failed = False
        super().emit(record)
        if self.failing and not self._failed:
            self.failing = False
            sys.stderr.write(f"Logging to {self.baseFilename} resumed\n")

    def handleError(self, record: logging.LogRecord) -> None:
        self._failed = True
        if not self.failing:
            self.failing = True
            error = sys.exc_info()[1]
            sys.stderr.write(
                f"Logging to {self.baseFilename} stopped ({error}); it resumes when the"
                " file can be written\n"
            )
        stream, self.stream = self.stream, None  # reopened by the next record
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):
                stream.close()


def log_file_path(data_dir: Path, node: str | None = None) -> Path:
    """Where the log goes: `evcms-desktop.log` in the data directory, or for one node of
    several sharing it (a PostgreSQL deployment) a file named after the node."""
    if node is None:
        return data_dir / APP_LOG
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", node).strip("-.") or "node"
    return data_dir / f"evcms-desktop-{safe[:80]}.log"


def node_log_name(port: int) -> str:
    """A node's name for its log file: its host and port, the same at every start and
    different for each node on one host (a node listening on any free port: its pid)."""
    return f"{socket.gethostname()}-{port or os.getpid()}"


def log_to_file(path: Path) -> Path | None:
    """The application's log, also into `path` (rotated, 5 x 1 MB)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = QuietFileHandler(path)
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
