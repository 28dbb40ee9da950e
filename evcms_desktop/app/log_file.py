"""The application's log file in the data directory, for the console and `--headless`
alike (no Qt here)."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

log = logging.getLogger(__name__)

APP_LOG = "evcms-desktop.log"
LOG_BYTES = 1_000_000
LOG_BACKUPS = 4


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
