"""Booking changes, seen on every tick (also those another process made): subscribers
are told, and on a site with a power limit the rest of the day is re-planned."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from datetime import datetime, time, timedelta
from typing import Any

import peewee

from evcms_desktop.csms.background import BackgroundTasks
from evcms_desktop.csms.commands import CommandService
from evcms_desktop.csms.config import Clock
from evcms_desktop.csms.events import EventKind, Publish
from evcms_desktop.csms.schedule_applier import AppliedPlan, replan_day
from evcms_desktop.csms.sessions import SessionLedger
from evcms_desktop.store.models import Booking, Station
from evcms_desktop.store.stations import station_calendar

log = logging.getLogger(__name__)


class Replanner:
    def __init__(
        self,
        ledger: SessionLedger,
        commands: CommandService,
        publish: Publish,
        tasks: BackgroundTasks,
        clock: Clock,
    ) -> None:
        self.ledger = ledger
        self.commands = commands
        self._publish = publish
        self._tasks = tasks
        self._clock = clock
        self._signatures: dict[int, tuple[Any, ...]] = {}  # per site
        self._replanning: asyncio.Task[None] | None = None
        self._replan_again: set[int] = set()
        self._applied: dict[int, AppliedPlan] = {}  # by station id: what its chargers hold

    def watch_bookings(self, now: datetime, sites: Collection[int]) -> None:
        """Tell subscribers when a site's bookings changed, and re-plan it if it has a
        limit. A site this node did not watch at the last tick is only looked at."""
        rows = (
            Booking.select(
                Booking.station,
                peewee.fn.COUNT(Booking.id),
                peewee.fn.MAX(Booking.id),
                peewee.fn.MAX(Booking.closed_at),
                peewee.fn.MAX(Booking.checked_in_at),
            )
            .where(Booking.station.in_(list(sites)))
            .group_by(Booking.station)
            .tuples()
        )
        signatures = {site: (0, None, None, None) for site in sites}
        signatures.update({row[0]: tuple(row[1:]) for row in rows})
        changed = [
            site
            for site, signature in signatures.items()
            if site in self._signatures and self._signatures[site] != signature
        ]
        self._signatures = signatures
        if changed:
            self._publish(
                EventKind.BOOKINGS_CHANGED, "Bookings changed", data={"sites": sorted(changed)}
            )
            self._replan_limited_sites(now, changed)

    def _replan_limited_sites(self, now: datetime, sites: Collection[int]) -> None:
        """On a site with a power limit, a booking change re-plans the rest of its day."""
        if self._replanning is not None and not self._replanning.done():
            self._replan_again.update(sites)  # one more pass when this one is done
            return
        stations = list(
            Station.select().where(
                Station.site_power_limit_kw.is_null(False) & Station.id.in_(list(sites))
            )
        )
        if stations:
            self._replan_again = set()
            self._replanning = self._tasks.spawn(self._replan(stations, now))

    async def _replan(self, stations: list[Station], now: datetime) -> None:
        running = {
            tx.booking_id: tx.id for tx in self.ledger.open.values() if tx.booking_id is not None
        }
        for station in stations:
            tz = station_calendar(station).tz
            end = datetime.combine(now.astimezone(tz).date() + timedelta(days=1), time(0), tz)
            try:
                schedule, results = await replan_day(
                    self.commands,
                    station,
                    now,
                    end,
                    transactions=running,
                    applied=self._applied.setdefault(station.id, AppliedPlan()),
                )
            except Exception:
                log.exception("Re-planning the day of %s failed", station.name)
                continue
            refused = [r.booking_id for r, answer in results if not answer.ok]
            log.info(
                "Re-planned %s: %d bookings, %d profiles sent, %d refused or offline",
                station.name,
                len(schedule.plans),
                len(results),
                len(refused),
            )
        if self._replan_again:
            self._replan_limited_sites(self._clock(), set(self._replan_again))
