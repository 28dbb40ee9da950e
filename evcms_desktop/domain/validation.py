"""Checks of a booking request, with messages a kiosk user can read."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from evcms_desktop.domain.site import Site

# The dates a person may give, on the command line and in every date field: the store's
# times and money stay representable around them (a day after 9999-12-31 is not).
FIRST_DATE, LAST_DATE = date(2000, 1, 1), date(2099, 12, 31)
DATE_RULE = f"Use a date from {FIRST_DATE} to {LAST_DATE}"
# A request made for "now" from a form is a little in the past by the time it is submitted.
PAST_TOLERANCE = timedelta(minutes=2)
# How much earlier than the arrival a driver may offer to come for an Eco plan.
MAX_EARLIER = timedelta(hours=12)

# A charge point id goes into the URL path and is the Basic-auth user name: only characters
# that need no escaping, and no ':' (it ends the user name in Basic auth).
CHARGE_POINT_ID = re.compile(r"[A-Za-z0-9._~@-]{1,48}")
CHARGE_POINT_ID_RULE = "1 to 48 letters, digits or ._~@-"
# A connector's maximum power, kW: from a slow AC socket to a 1 MW DC charger.
MIN_CONNECTOR_KW, MAX_CONNECTOR_KW = Decimal("1"), Decimal("1000")
# The least a booking may ask for: smaller is a mistake or a probe, not a charge.
MIN_ENERGY_KWH = Decimal("0.1")
MIN_POWER_KW = Decimal("1")
# The largest energy (kWh) or power (kW) a request may give: far beyond any charge, and a
# finite number much larger would overflow the time it needs.
MAX_AMOUNT = Decimal(1_000_000)


# A driver's name and contact, as a station's name: a person's words, bounded.
DRIVER_TEXT_MAX = 100


def parse_amount(text: str) -> Decimal | None:
    """An amount as a person types it (a comma for the point is taken); None when empty.

    ValueError, with a message for the person, for text that is not a number or one out of
    range; the kiosk, the booking dialog and `book` all refuse with these words.
    """
    text = text.strip().replace(",", ".")
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError("Enter a number, like 20 or 12.5.") from None
    if not value.is_finite():
        raise ValueError("Enter a number, like 20 or 12.5.")
    if abs(value) > MAX_AMOUNT:
        raise ValueError(f"{text} is more than this station can use: at most {MAX_AMOUNT}.")
    return value


def is_charge_point_id(ident: str) -> bool:
    """The one check of a charge point id, wherever one is accepted (whole string)."""
    return CHARGE_POINT_ID.fullmatch(ident) is not None


def connector_power_kw(value: Decimal | int | str) -> Decimal:
    """A connector's maximum power as a finite Decimal in range; ValueError otherwise."""
    try:
        power = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        power = Decimal("NaN")
    if not power.is_finite() or not MIN_CONNECTOR_KW <= power <= MAX_CONNECTOR_KW:
        raise ValueError(
            f"A connector's maximum power is {MIN_CONNECTOR_KW} to {MAX_CONNECTOR_KW} kW,"
            f" not {str(value)!r}."
        )
    return power


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class BookingRequestError(ValueError):
    """A request that cannot be planned; `errors` says which field and why."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(e.message for e in errors))

    def for_field(self, name: str) -> list[str]:
        return [e.message for e in self.errors if e.field == name]


def driver_errors(name: str | None, contact: str | None) -> list[FieldError]:
    """A driver's name and contact: at most DRIVER_TEXT_MAX printable characters each."""
    errors = []
    for field, text, what in (("name", name, "A name"), ("contact", contact, "A contact")):
        if text is not None and (len(text) > DRIVER_TEXT_MAX or not text.isprintable()):
            errors.append(
                FieldError(
                    field,
                    f"{what} has at most {DRIVER_TEXT_MAX} characters, without control characters.",
                )
            )
    return errors


@dataclass(frozen=True)
class PlanRequest:
    """What a driver asks for. Times are timezone-aware; energy or power (or both) is given."""

    arrival: datetime
    duration: timedelta
    energy_kwh: Decimal | None = None
    power_kw: Decimal | None = None
    connector_id: int | None = None
    # The earliest start the driver accepts for an Eco plan (None: the arrival; a driver
    # cannot charge before arriving).
    earliest: datetime | None = None


def describe_duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def longest_slot(energy_kwh: Decimal) -> timedelta:
    """The longest slot a booking of `energy_kwh` may take: the time that energy needs at
    the least charging power, MIN_POWER_KW. A longer slot holds a connector for nothing."""
    hours = min(energy_kwh, MAX_AMOUNT) / MIN_POWER_KW  # a longer span is no slot anyway
    return timedelta(hours=float(hours))


def slot_length_error(duration: timedelta, energy_kwh: Decimal | int | None) -> str | None:
    """The one check that a slot is not longer than its energy needs (the kiosk, the
    booking dialog and `book` all say this); None when it is not."""
    if energy_kwh is None:
        return None
    energy = Decimal(energy_kwh)  # an int from a caller is taken too
    if not energy.is_finite() or energy <= 0:
        return None
    longest = longest_slot(energy)
    if duration <= longest:
        return None
    return (
        f"{describe_duration(duration)} is longer than {energy.normalize():f} kWh needs"
        f" even at {MIN_POWER_KW} kW ({describe_duration(longest)}): book a shorter slot"
        " or more energy."
    )


def _earliest_errors(request: PlanRequest, now: datetime) -> list[FieldError]:
    """The driver's earlier start: before the arrival, not past, at most MAX_EARLIER."""
    earliest = request.earliest
    if earliest is None or request.arrival.tzinfo is None:
        return []
    if earliest.tzinfo is None:
        return [FieldError("earliest", "The earlier time needs a time zone.")]
    if earliest > request.arrival:
        return [FieldError("earliest", "The earlier time must not be after the arrival.")]
    if request.arrival - earliest > MAX_EARLIER:
        hours = int(MAX_EARLIER.total_seconds() // 3600)
        return [FieldError("earliest", f"Come at most {hours} hours before the arrival.")]
    if earliest < now - PAST_TOLERANCE:
        return [FieldError("earliest", "The earlier time has passed.")]
    return []


def date_errors(request: PlanRequest) -> list[FieldError]:
    """An arrival or earlier start on a date outside FIRST_DATE..LAST_DATE (checked before
    the store is asked about the days around it). The times are UTC: a local date in the
    range may be the day before or after it there."""
    first, last = FIRST_DATE - timedelta(days=1), LAST_DATE + timedelta(days=1)
    errors = []
    if not first <= request.arrival.date() <= last:
        errors.append(FieldError("arrival", f"{DATE_RULE}."))
    if request.earliest is not None and not first <= request.earliest.date() <= last:
        errors.append(FieldError("earliest", f"{DATE_RULE}."))
    return errors


def validate_request(site: Site, request: PlanRequest, now: datetime) -> list[FieldError]:
    errors: list[FieldError] = date_errors(request)
    if errors:
        return errors
    if request.arrival.tzinfo is None:
        errors.append(FieldError("arrival", "The arrival time needs a time zone."))
    elif request.arrival < now - PAST_TOLERANCE:
        local = site.calendar.to_local(now)
        errors.append(
            FieldError("arrival", f"The arrival time has passed. Choose {local:%H:%M} or later.")
        )
    errors.extend(_earliest_errors(request, now))
    if request.duration <= timedelta(0):
        errors.append(FieldError("duration", "The duration must be longer than zero."))
    elif request.duration > site.max_session:
        errors.append(
            FieldError(
                "duration", f"A booking can last at most {describe_duration(site.max_session)}."
            )
        )
    if request.energy_kwh is None and request.power_kw is None:
        errors.append(FieldError("energy", "Enter the energy you need (kWh) or a charging power."))
    if request.energy_kwh is not None and not request.energy_kwh >= MIN_ENERGY_KWH:
        errors.append(FieldError("energy", f"Book at least {MIN_ENERGY_KWH} kWh."))
    if request.power_kw is not None and not request.power_kw >= MIN_POWER_KW:
        errors.append(FieldError("power", f"The charging power is at least {MIN_POWER_KW} kW."))
    if request.energy_kwh is not None and request.energy_kwh >= MIN_ENERGY_KWH:
        too_long = slot_length_error(request.duration, request.energy_kwh)
        if too_long is not None:
            errors.append(FieldError("duration", too_long))

    connectors = site.connectors
    if not connectors:
        errors.append(
            FieldError(
                "connector",
                f"{site.name} has no connectors to book yet: an operator adds chargers"
                " under Settings > Chargers.",
            )
        )
    if request.connector_id is not None:
        chosen = site.connector(request.connector_id)
        if chosen is None:
            errors.append(FieldError("connector", "That connector is not at this station."))
            return errors
        connectors = (chosen,)
    if not connectors or errors:
        return errors

    best_rate = max(site.rate_kw(c) for c in connectors)
    if request.power_kw is not None and request.power_kw > best_rate:
        errors.append(
            FieldError(
                "power",
                f"The connectors here deliver at most {best_rate.normalize():f} kW.",
            )
        )
    if request.energy_kwh is not None:
        most = best_rate * Decimal(site.max_session.total_seconds()) / Decimal(3600)
        if request.energy_kwh > most:
            errors.append(
                FieldError(
                    "energy",
                    f"A connector here delivers at most {most.normalize():f} kWh"
                    f" in {describe_duration(site.max_session)}.",
                )
            )
    return errors
