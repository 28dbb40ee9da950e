"""Counting the deviations the tolerant reading accepted, and keeping them in the store.

Counted in memory as frames arrive (a charger may send a quirky MeterValues every few
seconds) and written on each timer tick, on the store writer's thread (kept for the next
tick when the store cannot commit); the first of each kind per charger since start
is published, so that a console can refresh what it shows.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from datetime import datetime

from evcms_desktop.csms.tolerance import DEVIATION_KINDS, Deviation
from evcms_desktop.csms.writer import StoreUnavailable
from evcms_desktop.store.deviations import DeviationCount, add_deviations

log = logging.getLogger(__name__)

StoreJob = Callable[[Callable[[], None], str], Awaitable[None]]  # BatchWriter.run


class DeviationRecorder:
    def __init__(self, announce: Callable[[str, Deviation], None]) -> None:
        self._announce = announce
        self._pending: dict[tuple[str, str], DeviationCount] = {}
        self._seen: set[tuple[str, str]] = set()

    def record(self, ident: str, deviations: Iterable[Deviation], now: datetime) -> None:
        for deviation in deviations:
            key = (ident, deviation.kind)
            known = self._pending.get(key)
            if known is None:
                self._pending[key] = DeviationCount(
                    ident, deviation.kind, 1, deviation.example, now, now
                )
            else:
                self._pending[key] = replace(
                    known, count=known.count + 1, example=deviation.example, last_at=now
                )
            if key not in self._seen:
                self._seen.add(key)
                log.warning(
                    "%s: tolerated %s (%s): %s",
                    ident,
                    deviation.kind,
                    DEVIATION_KINDS.get(deviation.kind, deviation.kind),
                    deviation.example,
                )
                self._announce(ident, deviation)

    async def flush(self, store: StoreJob) -> None:
        """Add the counts since the last flush to the store through `store`; when it
        cannot take them, they are kept for the next flush."""
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        try:
            await store(lambda: add_deviations(pending.values()), "deviation counts")
        except StoreUnavailable:
            self._merge_back(pending)
            log.warning("Deviation counts kept for later: the store cannot commit")
        except Exception:
            self._merge_back(pending)
            raise

    def _merge_back(self, pending: dict[tuple[str, str], DeviationCount]) -> None:
        for key, item in pending.items():
            newer = self._pending.get(key)
            self._pending[key] = (
                item
                if newer is None
                else replace(
                    item,
                    count=item.count + newer.count,
                    example=newer.example,
                    last_at=newer.last_at,
                )
            )
