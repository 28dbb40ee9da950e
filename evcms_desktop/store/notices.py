"""Notices about bookings and operator actions, kept in the Event table beside the central
system's events, so that the console shows them after a restart and whichever process made
them (console, command line, kiosk)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from evcms_desktop.store.models import Booking, ChargePoint, Event, Station
from evcms_desktop.store.stations import of_site

BOOKING_CREATED = "booking_created"
BOOKING_CANCELLED = "booking_cancelled"
BOOKING_CHECKED_IN = "booking_checked_in"
DRIVER_DATA_ERASED = "driver_data_erased"
OPERATOR_ACTION = "operator_action"

NOTICE_KINDS = frozenset(
    {BOOKING_CREATED, BOOKING_CANCELLED, BOOKING_CHECKED_IN, DRIVER_DATA_ERASED, OPERATOR_ACTION}
)
MESSAGE_MAX = 500


def record_notice(
    kind: str,
    message: str,
    *,
    booking_code: str | None = None,
    charge_point: str | None = None,
) -> Event:
    """Keep one notice. The message must not carry a driver's name or contact."""
    if kind not in NOTICE_KINDS:
        raise ValueError(f"Unknown notice kind {kind!r}.")
    return Event.create(
        kind=kind,
        message=message[:MESSAGE_MAX],
        booking_code=booking_code,
        charge_point=charge_point,
    )


def recent_events(
    kinds: Iterable[str], limit: int = 200, after_id: int = 0, station: Station | None = None
) -> list[Event]:
    """The newest events of these kinds (newer than `after_id`), newest first; with a
    station, those of its chargers and bookings and those of no charger nor booking."""
    where = Event.kind.in_(list(kinds)) & (Event.id > after_id)
    if station is not None:
        chargers = ChargePoint.select(ChargePoint.ident).where(of_site(station))
        bookings = Booking.select(Booking.code).where(Booking.station == station)
        where &= (
            Event.charge_point.in_(chargers)
            | Event.booking_code.in_(bookings)
            | (Event.charge_point.is_null() & Event.booking_code.is_null())
        )
    return list(Event.select().where(where).order_by(Event.id.desc()).limit(limit))


def booking_events(code: str, kinds: Iterable[str], limit: int = 20) -> list[Event]:
    """The events of these kinds about one booking, oldest first."""
    rows = (
        Event.select()
        .where((Event.booking_code == code) & Event.kind.in_(list(kinds)))
        .order_by(Event.id.desc())
        .limit(limit)
    )
    return list(reversed(list(rows)))


def prune_events(before: datetime, batch: int = 5_000) -> int:
    """Delete up to `batch` of the oldest events older than `before`; how many went. Small
    batches keep each write transaction (and the lock it holds) short."""
    oldest = Event.select(Event.id).where(Event.timestamp < before).order_by(Event.id).limit(batch)
    return int(Event.delete().where(Event.id.in_(oldest)).execute())


def last_event(kind: str, message_prefix: str = "") -> Event | None:
    """The newest event of a kind (whose message starts so)."""
    where = Event.kind == kind
    if message_prefix:
        where &= Event.message.startswith(message_prefix)
    return Event.select().where(where).order_by(Event.id.desc()).first()


def lockouts_since(kind: str, ident: str, since: datetime, limit: int = 100) -> list[Event]:
    """The newest events of a kind about one charger since a time (its lockouts, with the
    address each one holds in `data`)."""
    where = (Event.kind == kind) & (Event.charge_point == ident) & (Event.timestamp >= since)
    return list(Event.select().where(where).order_by(Event.id.desc()).limit(limit))
