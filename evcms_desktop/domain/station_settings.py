"""What the Settings page may save for a station: each value checked (a finite number within
its bounds, a real time zone, a currency code), with the message for the field it is in."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from evcms_desktop.domain.text import clean_text

# field -> (lowest, highest, whether the lowest itself is allowed, what it is)
TARIFF_BOUNDS: dict[str, tuple[Decimal, Decimal, bool, str]] = {
    "energy_price": (Decimal(0), Decimal(100), True, "an energy price per kWh"),
    "max_power_kw": (Decimal(0), Decimal(1000), False, "a charger power in kW"),
    "efficiency": (Decimal(0), Decimal(1), False, "an efficiency"),
    "peak_demand_charge": (Decimal(0), Decimal(10_000), True, "a charge per session"),
    "service_charge": (Decimal(0), Decimal(10_000), True, "a charge per session"),
}
MAX_DECIMALS = 4
NAME_MAX = 100
# Chargers connected (and handshaking) at once, at most; more get HTTP 503.
DEFAULT_MAX_CONNECTIONS = 10_000
MAX_CONNECTIONS_LIMIT = 100_000


class SettingError(ValueError):
    """A value the Settings page cannot save; the message says what would do."""


def tariff_value(field: str, text: str) -> Decimal:
    """A tariff parameter from what was typed: finite, within TARIFF_BOUNDS, at most four
    decimal places."""
    low, high, low_allowed, what = TARIFF_BOUNDS[field]
    shown = clean_text(text.strip(), 20)
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise SettingError(f"{shown!r} is not a number") from None
    bound = f"from {low} to {high}" if low_allowed else f"above {low}, at most {high}"
    if not value.is_finite() or not (low <= value <= high) or (value == low and not low_allowed):
        raise SettingError(f"give {what} {bound}, not {shown}")
    if -value.as_tuple().exponent > MAX_DECIMALS:  # type: ignore[operator]
        raise SettingError(f"at most {MAX_DECIMALS} decimal places, not {shown}")
    return value


def time_zone(text: str) -> str:
    name = text.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingError(
            f"{clean_text(name, 40)!r} is not a time zone (e.g. Europe/London)"
        ) from None
    return name


_CURRENCY = re.compile(r"[A-Za-z]{3}")


def currency_code(text: str) -> str:
    """A currency code as Settings and `sites add --currency` take it: three letters A to
    Z in either case (spaces around it ignored), stored upper-case; anything else, a
    newline or a non-ASCII letter included, is refused."""
    code = text.strip(" ")
    if not _CURRENCY.fullmatch(code):
        raise SettingError(f"{clean_text(text, 20)!r} is not a currency code (e.g. GBP, EUR)")
    return code.upper()


def station_name(text: str) -> str:
    name = text.strip()
    if not name:
        raise SettingError("the station needs a name")
    if len(name) > NAME_MAX or not name.isprintable():
        raise SettingError(f"a name of at most {NAME_MAX} characters, without control characters")
    return name


def max_connections(text: str) -> int:
    """The connection cap from what was typed: a whole number from 1 to
    MAX_CONNECTIONS_LIMIT (the same for --max-connections and Settings)."""
    digits = text.strip()
    shown = clean_text(digits, 20)
    unsigned = digits[1:] if digits[:1] in "+-" else digits
    if not (unsigned.isascii() and unsigned.isdigit()):
        raise SettingError(f"{shown!r} is not a whole number")
    count = int(digits)
    if not 1 <= count <= MAX_CONNECTIONS_LIMIT:
        raise SettingError(f"give 1 to {MAX_CONNECTIONS_LIMIT} connections, not {shown}")
    return count


def saved_max_connections(value: Any) -> int:
    """A saved connection cap; anything but a whole number in range is the default."""
    if isinstance(value, bool) or not isinstance(value, int):
        return DEFAULT_MAX_CONNECTIONS
    return value if 1 <= value <= MAX_CONNECTIONS_LIMIT else DEFAULT_MAX_CONNECTIONS
