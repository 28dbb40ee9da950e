"""Booking: plans from the domain against the bookings near the request, and an atomic take.

Only bookings that can touch the search window are read (an indexed range on start), so
the cost of a request follows the bookings near its day, not the whole history.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

import peewee

from evcms_desktop.domain.availability import Interval, Occupancy
from evcms_desktop.domain.booking_codes import new_booking_code, normalize_code
from evcms_desktop.domain.plans import Plan, PlanOutcome, generate_plans
from evcms_desktop.domain.site import Site
from evcms_desktop.domain.tariff import PricingRule
from evcms_desktop.domain.validation import (
    BookingRequestError,
    PlanRequest,
    date_errors,
    driver_errors,
)
from evcms_desktop.store.database import BOOKING_OVERLAP_CONSTRAINT
from evcms_desktop.store.fields import parse_utc
from evcms_desktop.store.models import (
    BLOCKING_STATES,
    Booking,
    BookingState,
    ChargePoint,
    Connector,
    Station,
    utcnow,
)
from evcms_desktop.store.notices import (
    BOOKING_CANCELLED,
    BOOKING_CHECKED_IN,
    BOOKING_CREATED,
    record_notice,
)
from evcms_desktop.store.stations import Sites, default_station, ids_of, load_site, reload_station

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class SlotTakenError(RuntimeError):
    """The chosen slot was booked by someone else between planning and confirming."""


SLOT_TAKEN = "That slot has just been taken. Please choose again from fresh plans."


class BookingNotFoundError(LookupError):
    pass


@dataclass(frozen=True)
class DriverDetails:
    name: str | None = None
    contact: str | None = None


def bookings_between(
    sites: Sites, start: datetime, end: datetime, state: str | None = None
) -> list[Booking]:
    """The bookings of a site (or of several) that overlap [start, end), optionally of one
    state, by start."""
    query = (
        Booking.select(Booking, Connector, ChargePoint)
        .join(Connector)
        .join(ChargePoint)
        .where(Booking.station.in_(ids_of(sites)) & (Booking.start < end) & (Booking.end > start))
        .order_by(Booking.start)
    )
    if state:
        query = query.where(Booking.state == state)
    return list(query)


def upcoming_booking_codes(start: datetime, end: datetime) -> dict[str, list[tuple[str, datetime]]]:
    """Bookings still to be used that touch [start, end): {charger id: [(booking ID, end
    of its window)]}, for the chargers' local authorization lists."""
    query = cast(
        "Iterable[tuple[str, str, datetime]]",
        Booking.select(ChargePoint.ident, Booking.code, Booking.end)
        .join(Connector)
        .join(ChargePoint)
        .where(
            Booking.state.in_([s.value for s in BLOCKING_STATES])
            & (Booking.start < end)
            & (Booking.end > start)
        )
        .tuples(),
    )
    codes: dict[str, list[tuple[str, datetime]]] = defaultdict(list)
    for ident, code, until in query:
        codes[ident].append((code, until))
    return dict(codes)


def busy_intervals(
    station: Station, start: datetime, end: datetime, longest: timedelta
) -> dict[int, list[Interval]]:
    """Blocking bookings of the station that overlap [start, end), per connector id.

    Bookings last at most `longest`, so the (station, start) index bounds the scan. This
    is the hot query of every plan request: it reads three columns through the raw
    cursor rather than building a model object per row.
    """
    field = Booking.start
    lower, upper, after = (field.db_value(t) for t in (start - longest, end, start))
    states = [s.value for s in BLOCKING_STATES]
    db = Booking._meta.database
    mark = db.param
    cursor = db.execute_sql(
        'SELECT connector_id, start, "end" FROM booking'
        f' WHERE station_id = {mark} AND start >= {mark} AND start < {mark} AND "end" > {mark}'
        f" AND state IN ({', '.join([mark] * len(states))})",
        (station.id, lower, upper, after, *states),
    )
    busy: dict[int, list[Interval]] = defaultdict(list)
    for connector_id, b_start, b_end in cursor:
        busy[connector_id].append((parse_utc(b_start), parse_utc(b_end)))
    return busy


class BookingService:
    """Plans, confirms and changes bookings of one station."""

    def __init__(
        self,
        db: peewee.Database,
        station: Station | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.db = db
        self.station = station or default_station()
        self.clock = clock

    def site(self) -> Site:
        """The station as it is now: settings changed elsewhere apply to the next plan."""
        self.station = reload_station(self.station.id)
        return load_site(self.station)

    def occupancy(self, site: Site, around: datetime) -> Occupancy:
        """Bookings that any plan for a request arriving at `around` could run into."""
        return Occupancy(
            busy_intervals(
                self.station,
                around - site.horizon,
                around + site.horizon + site.max_session,
                site.max_session,
            )
        )

    def plan(self, request: PlanRequest, rule: PricingRule = PricingRule.OPTIMIZED) -> PlanOutcome:
        """The plans for a request; BookingRequestError explains an invalid one."""
        if errors := date_errors(request):
            raise BookingRequestError(errors)
        site = self.site()
        return generate_plans(
            site, request, self.occupancy(site, request.arrival), self.clock(), rule
        )

    def confirm(
        self,
        outcome: PlanOutcome,
        plan: Plan,
        driver: DriverDetails | None = None,
        rule: PricingRule = PricingRule.OPTIMIZED,
    ) -> Booking:
        """Book `plan` if its connector is still free; committed before it is returned."""
        driver = driver or DriverDetails()
        refused = driver_errors(driver.name, driver.contact)
        if refused:
            raise BookingRequestError(refused)
        request = outcome.request
        # IMMEDIATE takes the write lock first, so two racing confirmations are serialised
        # and the second one sees the first one's booking.
        with self.db.atomic("IMMEDIATE"):
            busy = busy_intervals(self.station, plan.start, plan.end, self.site().max_session)
            if busy.get(plan.connector_id):
                raise SlotTakenError(SLOT_TAKEN)
            booking = self._create_guarded(
                code=self._unused_code(),
                station=self.station,
                connector=plan.connector_id,
                start=plan.start,
                end=plan.end,
                requested_start=request.arrival,
                requested_end=request.arrival + request.duration,
                energy_kwh=plan.energy_kwh,
                power_kw=plan.power_kw,
                plan=plan.kind.value,
                peak_on=plan.peak_on,
                overlapped=plan.overlapped,
                acm=plan.acm,
                rule=rule.value,
                price_energy=plan.price.energy,
                price_time_of_use=plan.price.time_of_use,
                price_service=plan.price.service,
                price_total=plan.price.total,
                driver_name=driver.name or None,
                driver_contact=driver.contact or None,
            )
            record_notice(
                BOOKING_CREATED,
                f"New booking {booking.code} on {booking.connector.label}",
                booking_code=booking.code,
            )
        log.info("Booked %s on connector %s from %s", booking.code, plan.connector_id, plan.start)
        return booking

    def _create_guarded(self, **fields: object) -> Booking:
        """Booking.create, with PostgreSQL's overlap constraint read as a taken slot: on
        PostgreSQL the check above does not lock out a writer on another connection."""
        try:
            with self.db.atomic():
                return Booking.create(**fields)
        except peewee.IntegrityError as exc:
            if BOOKING_OVERLAP_CONSTRAINT in str(exc):
                raise SlotTakenError(SLOT_TAKEN) from None
            raise

    @staticmethod
    def _unused_code() -> str:
        while True:
            code = new_booking_code()
            if not Booking.select().where(Booking.code == code).exists():
                return code

    def find(self, code: str) -> Booking:
        """The booking with this ID at this service's site; another site's is not found."""
        booking = Booking.get_or_none(
            (Booking.code == normalize_code(code)) & (Booking.station == self.station)
        )
        if booking is None:
            raise BookingNotFoundError(f"No booking has the ID {normalize_code(code)!r}.")
        return booking

    def _move(
        self,
        code: str,
        allowed: tuple[BookingState, ...],
        to: BookingState,
        notice: tuple[str, str] | None = None,
    ) -> Booking:
        """Move a booking to `to`; `notice` (kind, message with {code}) is kept with it."""
        with self.db.atomic("IMMEDIATE"):
            booking = self.find(code)
            if booking.state not in allowed:
                state = booking.state.replace("_", " ")
                raise ValueError(
                    f"Booking {booking.code} is {state} and cannot be {to.value.replace('_', ' ')}."
                )
            booking.state = to.value
            now = self.clock()
            if to is BookingState.CHECKED_IN:
                booking.checked_in_at = now
            elif to in (BookingState.CANCELLED, BookingState.NO_SHOW, BookingState.COMPLETED):
                booking.closed_at = now
            booking.save()
            if notice is not None:
                kind, message = notice
                record_notice(kind, message.format(code=booking.code), booking_code=booking.code)
        return booking

    def cancel(self, code: str, by: str = "command line") -> Booking:
        """Cancel a booking (also a checked-in one); logged and kept as a notice with `by`."""
        was = self.find(code).state
        booking = self._move(
            code,
            (BookingState.CONFIRMED, BookingState.CHECKED_IN),
            BookingState.CANCELLED,
            (BOOKING_CANCELLED, f"Booking {{code}} ({was.replace('_', ' ')}) cancelled by {by}"),
        )
        log.info("Booking %s (%s) cancelled by %s", booking.code, was, by)
        return booking

    def check_in(self, code: str) -> Booking:
        booking = self._move(
            code,
            (BookingState.CONFIRMED,),
            BookingState.CHECKED_IN,
            (BOOKING_CHECKED_IN, "Booking {code} checked in"),
        )
        log.info("Booking %s checked in", booking.code)
        return booking
