"""Bookings on the chargers' local authorization lists (SendLocalList).

Each connected charger's list is kept in step with its bookings: every booking ID on one
of its connectors that is still to be used, valid until the end of its booking window.
A charger that loses its connection can then start a booked session on its own; the
transaction comes in, with its own start time, when it reconnects, and is judged and
priced then like any other. A charger that does not manage a local list (NotSupported)
is not asked again while it stays connected.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from evcms_desktop.csms.background import BackgroundTasks
from evcms_desktop.csms.commands import CommandService
from evcms_desktop.csms.config import Clock
from evcms_desktop.csms.protocol import format_timestamp
from evcms_desktop.store.bookings import upcoming_booking_codes

log = logging.getLogger(__name__)

LEAD = timedelta(hours=24)  # bookings starting within this are put on the list
Entries = frozenset[tuple[str, datetime]]  # (booking ID, end of its window)


class LocalListSync:
    def __init__(
        self,
        commands: CommandService,
        connected: Callable[[], set[str]],
        tasks: BackgroundTasks,
        clock: Clock,
    ) -> None:
        self._commands = commands
        self._connected = connected
        self._tasks = tasks
        self._clock = clock
        self._sent: dict[str, Entries] = {}
        self._refused: set[str] = set()
        self._sending: set[str] = set()

    def forget(self, ident: str) -> None:
        """A charger (re)connected: its list is sent afresh."""
        self._sent.pop(ident, None)
        self._refused.discard(ident)

    def tick(self, now: datetime) -> None:
        connected = self._connected()
        for ident in set(self._sent) - connected:
            del self._sent[ident]
        wanted = upcoming_booking_codes(now, now + LEAD)
        for ident in connected - self._refused - self._sending:
            entries: Entries = frozenset(wanted.get(ident, ()))
            if not entries and ident not in self._sent:
                continue  # nothing to list (what an older list held expires by itself)
            if self._sent.get(ident) != entries:
                self._sending.add(ident)
                self._tasks.spawn(self._send(ident, entries, now))

    async def _send(self, ident: str, entries: Entries, now: datetime) -> None:
        try:
            result = await self._commands.send_local_list(
                ident,
                int(now.timestamp()),  # rises with every full list sent
                [
                    {"idTag": code, "idTagInfo": {"status": "Accepted", "expiryDate": end}}
                    for code, end in sorted((code, format_timestamp(end)) for code, end in entries)
                ],
            )
        finally:
            self._sending.discard(ident)
        if result.ok:
            self._sent[ident] = entries
            log.info("%s: local list of %d booking(s) sent", ident, len(entries))
        elif result.status in ("NotSupported", "Error"):
            self._refused.add(ident)
            log.info("%s keeps no local list (%s)", ident, result.status)
        else:
            log.warning("%s: SendLocalList %s %s", ident, result.status, result.detail)
