"""The timers of bookings and sessions, run on every tick of the central system:
auto-stop at the booked end, cars staying past it, no-shows, and reservations mirrored
onto the chargers. They read on the loop and write on the store writer's thread."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from datetime import datetime, timedelta

from evcms_desktop.csms.background import BackgroundTasks
from evcms_desktop.csms.commands import CommandService
from evcms_desktop.csms.config import Clock, CsmsConfig
from evcms_desktop.csms.events import EventKind, Publish, publish_session_stopped
from evcms_desktop.csms.sessions import SessionLedger
from evcms_desktop.csms.writer import StoreUnavailable
from evcms_desktop.store.models import (
    Booking,
    BookingState,
    ChargePoint,
    Connector,
    Station,
)
from evcms_desktop.store.notices import booking_events
from evcms_desktop.store.sessions import overstaying
from evcms_desktop.store.stations import station_calendar

log = logging.getLogger(__name__)


class SessionTimers:
    def __init__(
        self,
        config: CsmsConfig,
        ledger: SessionLedger,
        commands: CommandService,
        is_connected: Callable[[str], bool],
        publish: Publish,
        tasks: BackgroundTasks,
        clock: Clock,
    ) -> None:
        self.config = config
        self.ledger = ledger
        self.commands = commands
        self._is_connected = is_connected
        self._publish = publish
        self._tasks = tasks
        self._clock = clock
        self._overstays_told: set[int] = set()  # booking ids
        self._marking: asyncio.Task[None] | None = None  # no-shows being written
        self._mirroring: set[int] = set()  # booking ids whose reservation is being sent

    # -- auto-stop at the booked end --------------------------------------------------------

    def auto_stop(self, now: datetime, sites: Collection[int]) -> None:
        for tx in list(self.ledger.open.values()):
            if tx.station_id not in sites:
                continue  # another node leads that site
            if tx.booking_end is None or now < tx.booking_end + self.config.stop_grace:
                continue
            if not self._is_connected(tx.charge_point):
                continue  # tried again when it reconnects
            last = tx.stop_requested_at
            if last is not None and now - last < self.config.stop_retry:
                continue
            tx.stop_requested_at = now
            log.info("Booking %s ended: stopping transaction %s", tx.booking_code, tx.id)
            self._tasks.spawn(self._remote_stop(tx.charge_point, tx.id))

    async def _remote_stop(self, ident: str, transaction_id: int) -> None:
        result = await self.commands.remote_stop(ident, transaction_id)
        if result.ok:
            return
        log.warning(
            "RemoteStop of %s at %s: %s %s", transaction_id, ident, result.status, result.detail
        )
        tx = self.ledger.open.get(transaction_id)
        if result.status == "Rejected" and tx is not None:
            # The charger does not know the transaction (lost in a reboot while offline):
            # close it with the last reading it sent, as OCPP has nothing else to offer.
            meter_stop = int(tx.energy_wh if tx.energy_wh is not None else tx.meter_start_wh)
            cp = ChargePoint.get(ChargePoint.ident == ident)
            outcome = await self.ledger.stop_stored(
                cp, transaction_id, meter_stop, self._clock(), "Other", None
            )
            log.warning(
                "Closed transaction %s, unknown to %s, at %s Wh", transaction_id, ident, meter_stop
            )
            publish_session_stopped(self._publish, ident, outcome)

    # -- cars staying past the booked end --------------------------------------------------

    def overstays(self, now: datetime, sites: Collection[int]) -> None:
        """Tell the driver and the attendant, once per booking, that its car is still
        plugged in after its booked end (the bookings of `sites`)."""
        staying = overstaying(now, self.config.stop_grace + self.config.overstay_grace, sites)
        told = self._overstays_told & {b.id for b in staying}
        for booking in staying:
            if booking.id in told:
                continue
            told.add(booking.id)
            if booking_events(booking.code, [EventKind.CAR_OVERSTAYING.value]):
                continue  # told before a restart, or by another node
            connector = booking.connector
            end = station_calendar(booking.station).to_local(booking.end)
            self._publish(
                EventKind.CAR_OVERSTAYING,
                f"Booking {booking.code}: the car at {connector.label} is still plugged in"
                f" after its booked end at {end:%H:%M}; please move it",
                connector.charge_point.ident,
                connector.number,
                data={"booking_code": booking.code, "booking_id": booking.id},
            )
        self._overstays_told = told

    # -- no-shows ---------------------------------------------------------------------------

    def no_shows(self, now: datetime, sites: Collection[int]) -> None:
        for station in Station.select().where(Station.id.in_(list(sites))):
            grace = self.ledger.grace_for(station)
            late = Booking.select().where(
                (Booking.station == station)
                & (Booking.state == BookingState.CONFIRMED)
                & (Booking.start < now - grace)
                & (Booking.start >= now - grace - timedelta(days=2))
            )
            found = [(booking.id, booking.code) for booking in late]
            if found and (self._marking is None or self._marking.done()):
                self._marking = self._tasks.spawn(self._mark_no_shows(found, now))

    async def _mark_no_shows(self, late: list[tuple[int, str]], now: datetime) -> None:
        def mark() -> list[tuple[int, str]]:
            marked = []
            for booking_id, code in late:
                query = Booking.update(state=BookingState.NO_SHOW.value, closed_at=now).where(
                    (Booking.id == booking_id) & (Booking.state == BookingState.CONFIRMED)
                )
                if query.execute():
                    marked.append((booking_id, code))
            return marked

        try:
            marked = await self.ledger.writer.run(mark, "no-shows")
        except StoreUnavailable as exc:
            log.warning("No-shows not marked this time: %s", exc)
            return
        for booking_id, code in marked:
            self._publish(
                EventKind.BOOKING_NO_SHOW,
                f"Booking {code} was not used: no-show",
                data={"booking_code": code, "booking_id": booking_id},
            )

    # -- reservations -----------------------------------------------------------------------

    def mirror_reservations(self, now: datetime, sites: Collection[int]) -> None:
        due = (
            Booking.select(Booking, Connector, ChargePoint)
            .join(Connector)
            .join(ChargePoint)
            .where(
                ChargePoint.supports_reservation
                & ChargePoint.connected
                & ChargePoint.station.in_(list(sites))
                & (
                    (
                        (Booking.state == BookingState.CONFIRMED)
                        & ~Booking.reservation_sent
                        & (Booking.start <= now + self.config.reservation_lead)
                        & (Booking.start > now - timedelta(hours=1))
                    )
                    | ((Booking.state == BookingState.CANCELLED) & Booking.reservation_sent)
                )
            )
        )
        for booking in due:
            ident = booking.connector.charge_point.ident
            if self._is_connected(ident) and booking.id not in self._mirroring:
                self._mirroring.add(booking.id)
                task = self._tasks.spawn(self._mirror(booking, ident))
                task.add_done_callback(lambda _, done=booking.id: self._mirroring.discard(done))

    async def _mark_reservation(self, booking: Booking, sent: bool) -> bool:
        query = Booking.update(reservation_sent=sent).where(Booking.id == booking.id)
        try:
            await self.ledger.writer.run(query.execute, f"reservation of {booking.code}")
        except StoreUnavailable as exc:
            log.warning("Reservation of %s not marked: %s", booking.code, exc)
            return False
        return True

    async def _mirror(self, booking: Booking, ident: str) -> None:
        if booking.state == BookingState.CANCELLED:
            result = await self.commands.cancel_reservation(ident, booking.id)
            if result.status in ("Accepted", "Rejected"):  # Rejected: it had none
                await self._mark_reservation(booking, False)
            return
        # Marked first so that the next tick does not send it twice.
        if not await self._mark_reservation(booking, True):
            return
        expiry = booking.start + self.ledger.grace_for(booking.station)
        result = await self.commands.reserve_now(
            ident, booking.connector.number, expiry, booking.code, booking.id
        )
        if not result.ok:
            log.warning("ReserveNow of %s at %s: %s", booking.code, ident, result.status)
            if result.status in ("Offline", "TimedOut", "Error"):
                await self._mark_reservation(booking, False)
