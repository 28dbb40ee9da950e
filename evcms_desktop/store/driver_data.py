"""Drivers' personal data (the name and contact kept with a booking): how long it is kept,
erasing it on request, and exporting it on request.

A booking outlives its driver's details: blanking keeps its times, energy and price. The
retention is a station setting, 90 days after the booking ends unless changed. A driver
is recognised by the contact given with the booking, else by the name, else it is that
one booking. Nothing here writes a name or contact into a log line or a notice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from evcms_desktop.domain.booking_codes import normalize_code
from evcms_desktop.store.models import Booking, connector_label
from evcms_desktop.store.notices import DRIVER_DATA_ERASED, record_notice
from evcms_desktop.store.settings import read_setting, write_setting

log = logging.getLogger(__name__)

RETENTION_KEY = "driver_data_retention_days"
DEFAULT_RETENTION_DAYS = 90
MIN_RETENTION_DAYS = 1
MAX_RETENTION_DAYS = 3650


class DriverDataError(ValueError):
    """A request about a driver's data that cannot be done as asked (said in one line)."""


def retention_days() -> int:
    """Days after a booking's end that its driver's details are kept."""
    value = read_setting(RETENTION_KEY, DEFAULT_RETENTION_DAYS)
    if isinstance(value, bool) or not isinstance(value, int):
        return DEFAULT_RETENTION_DAYS
    return min(max(value, MIN_RETENTION_DAYS), MAX_RETENTION_DAYS)


def set_retention_days(days: int) -> None:
    if isinstance(days, bool) or not isinstance(days, int):
        raise DriverDataError("The retention is a whole number of days.")
    if not MIN_RETENTION_DAYS <= days <= MAX_RETENTION_DAYS:
        raise DriverDataError(
            f"Keep drivers' details from {MIN_RETENTION_DAYS} to {MAX_RETENTION_DAYS} days"
            f" after a booking ends, not {days}."
        )
    write_setting(RETENTION_KEY, days)
    log.info("Drivers' details are kept %d days after a booking ends", days)


def _has_details() -> Any:
    return Booking.driver_name.is_null(False) | Booking.driver_contact.is_null(False)


def blank_expired(now: datetime) -> int:
    """Blank the details of bookings that ended longer ago than the retention; how many."""
    days = retention_days()
    cutoff = now - timedelta(days=days)
    with Booking._meta.database.atomic("IMMEDIATE"):
        count = (
            Booking.update(driver_name=None, driver_contact=None)
            .where((Booking.end < cutoff) & _has_details())
            .execute()
        )
        if count:
            record_notice(
                DRIVER_DATA_ERASED,
                f"Drivers' details blanked on {count} booking{'s' * (count != 1)} that"
                f" ended over {days} days ago",
            )
    if count:
        log.info("Drivers' details blanked on %d bookings past the %d-day retention", count, days)
    return count


def _booking(code: str) -> Booking:
    booking = Booking.get_or_none(Booking.code == normalize_code(code))
    if booking is None:
        raise DriverDataError(f"No booking has the ID {normalize_code(code)!r}.")
    return booking


def driver_bookings(code: str) -> list[Booking]:
    """The bookings of the driver of booking `code` (by contact, else name, else just it)."""
    booking = _booking(code)
    if booking.driver_contact:
        match = Booking.driver_contact == booking.driver_contact
    elif booking.driver_name:
        match = Booking.driver_name == booking.driver_name
    else:
        return [booking]
    return list(Booking.select().where(match).order_by(Booking.start))


def erase_driver(code: str, by: str = "command line") -> int:
    """Blank the driver's details on all their bookings, on their request; how many."""
    with Booking._meta.database.atomic("IMMEDIATE"):
        bookings = driver_bookings(code)
        ids = [b.id for b in bookings if b.driver_name or b.driver_contact]
        if ids:
            Booking.update(driver_name=None, driver_contact=None).where(
                Booking.id.in_(ids)
            ).execute()
        count = len(ids)
        record_notice(
            DRIVER_DATA_ERASED,
            f"Driver's details erased on request from {count}"
            f" booking{'s' * (count != 1)} (asked with {normalize_code(code)}, by {by})",
            booking_code=normalize_code(code),
        )
    log.info("Driver's details erased from %d bookings (asked with %s)", count, code)
    return count


def export_driver(code: str) -> dict[str, Any]:
    """What is kept about the driver of booking `code`, for their access request."""
    bookings = driver_bookings(code)
    first = bookings[0]
    return {
        "driver": {"name": first.driver_name, "contact": first.driver_contact},
        "retention_days": retention_days(),
        "bookings": [
            {
                "booking_id": b.code,
                "state": b.state,
                "start": b.start.isoformat(),
                "end": b.end.isoformat(),
                "connector": connector_label(b.connector.charge_point.ident, b.connector.number),
                "energy_kwh": str(b.energy_kwh),
                "price_total": str(b.price_total),
                "driver_name": b.driver_name,
                "driver_contact": b.driver_contact,
                "booked_at": b.created_at.isoformat(),
            }
            for b in bookings
        ],
    }
