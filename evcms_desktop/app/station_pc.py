"""What a station PC needs of the console: one instance per database, a crash log and the
application's own log file in the data directory.

The single-instance guard is a local socket (QLocalServer) named after the database (and site):
a second console on the same file finds the first listening, asks it to come to the front,
and says so in one line. The crash log is Python's faulthandler writing into the data
directory; the next start shows it in Help and keeps it as crash.log.old.
"""

from __future__ import annotations

import faulthandler
import hashlib
import logging
from pathlib import Path
from typing import TextIO

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

log = logging.getLogger(__name__)

CRASH_LOG = "crash.log"
CONNECT_MS = 500
RAISE_MESSAGE = b"raise\n"


def instance_name(key: str) -> str:
    """The local socket's name for consoles on this database (and site)."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"evcms-desktop-{digest}"


class InstanceGuard(QObject):
    """Held by the first console on a database; later ones ask it to come to the front."""

    raise_requested = Signal()

    def __init__(self, key: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = instance_name(key)
        self.server: QLocalServer | None = None

    def acquire(self) -> bool:
        """True when this is the first console; else the first one was asked to the front."""
        socket = QLocalSocket(self)
        socket.connectToServer(self.name)
        first_is_there = socket.waitForConnected(CONNECT_MS)
        if first_is_there:
            socket.write(RAISE_MESSAGE)
            socket.waitForBytesWritten(CONNECT_MS)
            socket.disconnectFromServer()
        socket.deleteLater()
        if first_is_there:
            return False
        QLocalServer.removeServer(self.name)  # left behind by a console that crashed
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.name):
            log.warning("No single-instance guard: %s", server.errorString())
            return True
        server.newConnection.connect(self._knocked)
        self.server = server
        return True

    def _knocked(self) -> None:
        assert self.server is not None
        while (socket := self.server.nextPendingConnection()) is not None:
            socket.readyRead.connect(self._read)

    def _read(self) -> None:
        socket = self.sender()
        if not isinstance(socket, QLocalSocket):
            return
        knock = bytes(socket.readAll().data())
        socket.readyRead.disconnect(self._read)
        socket.deleteLater()
        if knock.startswith(RAISE_MESSAGE.strip()):
            log.info("A second console on this database asked this one to the front")
            self.raise_requested.emit()

    def release(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server.deleteLater()
            self.server = None


def previous_crash(data_dir: Path) -> str | None:
    """What faulthandler wrote when the console last died, once; kept as crash.log.old."""
    path = data_dir / CRASH_LOG
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    if not text:
        return None
    path.replace(path.with_name(CRASH_LOG + ".old"))
    return text[-20_000:]


def enable_crash_log(data_dir: Path) -> TextIO | None:
    """Fatal errors (segfaults, aborts, deadlocks killed by a signal) are dumped there."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        stream = (data_dir / CRASH_LOG).open("a", encoding="utf-8")
    except OSError as exc:
        log.warning("No crash log: %s", exc)
        return None
    faulthandler.enable(file=stream, all_threads=True)
    return stream
