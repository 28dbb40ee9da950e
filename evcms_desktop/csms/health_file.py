"""The store's trouble, written beside it while it lasts.

While the store cannot commit, its trouble cannot be recorded in it: `sessions` read the
last recorded episode and said it was over, and `chargers list` read the connection
registry, whose rows could not be written, and called connected chargers offline. So each
node writes a small JSON file in the data directory while its store cannot commit (when it
starts, and again each tick) and removes it once the store commits again or the node stops.
A file not rewritten for `STALE_SECONDS` is a node's that stopped without removing it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)

PREFIX = "store-health-"
STALE_SECONDS = 30.0
MAX_LISTED = 10_000  # connected chargers named in one file
REWRITE_SECONDS = 5.0  # at most this often while the trouble lasts


@dataclass(frozen=True)
class Trouble:
    """A node's store that cannot commit: since when, why, and the chargers it holds."""

    node: str
    since: datetime
    error: str
    connected: frozenset[str]


def _path(data_dir: Path, node: str) -> Path:
    return data_dir / f"{PREFIX}{re.sub(r'[^A-Za-z0-9_.-]', '-', node)[:100]}.json"


class HealthFile:
    """The file of one node (the central system's): a few kilobytes in the data directory,
    never the store, written on the loop by the ticks while the trouble lasts."""

    def __init__(self, data_dir: Path, node: str) -> None:
        self.path = _path(data_dir, node)
        self._node = node
        self._since: datetime | None = None
        self._written_at = -float("inf")
        self._connected: set[str] = set()  # as last written

    def trouble(self, error: str, now: datetime, connected: set[str]) -> None:
        """The store cannot commit (since the first call after it last could); written again
        when the chargers connected here changed, else every REWRITE_SECONDS."""
        if self._since is None:
            self._since = now
        elif connected == self._connected and time.monotonic() - self._written_at < REWRITE_SECONDS:
            return
        body = {
            "node": self._node,
            "since": self._since.isoformat(),
            "error": error[:500],
            "connected": sorted(connected)[:MAX_LISTED],
        }
        temporary = self.path.with_suffix(".tmp")
        try:
            temporary.write_text(json.dumps(body), encoding="utf-8")
            os.replace(temporary, self.path)
        except OSError as exc:
            log.warning("Could not write the store's health to %s: %s", self.path.name, exc)
            return
        self._written_at = time.monotonic()
        self._connected = set(connected)

    def healthy(self) -> None:
        """The store commits again (or the node stops): no file."""
        if self._since is None:
            return
        self._since = None
        self._written_at = -float("inf")
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("Could not remove %s: %s", self.path.name, exc)


def current_troubles(data_dir: Path) -> list[Trouble]:
    """The troubles of the nodes whose files are fresh; unreadable files are skipped."""
    troubles = []
    now = time.time()
    for path in sorted(data_dir.glob(f"{PREFIX}*.json")):
        try:
            if now - path.stat().st_mtime > STALE_SECONDS:
                continue
            body = json.loads(path.read_text(encoding="utf-8"))
            since = datetime.fromisoformat(str(body["since"]))
            connected = body.get("connected", [])
            troubles.append(
                Trouble(
                    node=str(body.get("node", "")),
                    since=since if since.tzinfo else since.replace(tzinfo=UTC),  # as written
                    error=str(body["error"]),
                    connected=frozenset(str(i) for i in connected)
                    if isinstance(connected, list)
                    else frozenset(),
                )
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return troubles
