"""Plausibility of what a charger reports: readings, meter registers, session ends, clocks.

Pure functions. A charger's numbers are not trusted: a reading is a finite number within
the physical bounds of its measurand, the energy register only moves forward within a
transaction, and a session is billed from what is plausible, never from raw numbers.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# A sampled value as text: OCPP sends numbers as strings. Longer ones are not numbers.
MAX_VALUE_CHARS = 32
# ASCII digits only, and no newline before the end (re's \d and $ allow both).
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,3})?")

# The largest energy register a meter can plausibly show, in Wh (10 GWh), and so the
# bound of meterStart and meterStop.
MAX_REGISTER_WH = 10_000_000_000
# The most a charger can deliver: a DC charger's 1 MW.
MAX_POWER_KW = 1_000.0
# Energy a connector may deliver beyond its power times the time: meters and clocks are
# not exact (a relative tolerance plus a constant for short spans).
ENERGY_TOLERANCE = 0.10
ENERGY_ALLOWANCE_WH = 100.0
# A charger's timestamp this far after the moment the server received the message, or
# before this date, is wrong. A message cannot report a future: network delay and queued
# offline messages make timestamps earlier than their receipt, never later, so only a
# charger's clock running ahead explains a later one. The tolerance allows a clock set by
# hand or drifting between the Heartbeat answers that set it; the most a charger can gain
# from it is its connector's power for that long (1.8 kWh at 22 kW).
MAX_CLOCK_AHEAD = timedelta(minutes=5)
EARLIEST_PLAUSIBLE = datetime(2010, 1, 1, tzinfo=UTC)
# How late a connected charger's message may arrive after what it reports (network delay,
# a busy charger): a start claimed earlier than that, while it was connected, is not
# vouched for, and a stop stamped later than its receipt by more is reviewed.
LIVE_DELAY = timedelta(seconds=60)

# measurand prefix -> (base unit, {unit: factor to the base unit}, lower, upper bound)
_ENERGY_UNITS = {"Wh": 1.0, "kWh": 1000.0, "varh": 1.0, "kvarh": 1000.0}
_POWER_UNITS = {"W": 1.0, "kW": 1000.0, "var": 1.0, "kvar": 1000.0, "VA": 1.0, "kVA": 1000.0}
_BOUNDS: dict[str, tuple[str, dict[str, float], float, float]] = {
    "Energy": ("Wh", _ENERGY_UNITS, 0.0, float(MAX_REGISTER_WH)),
    "Power.Factor": ("", {"": 1.0}, -1.0, 1.0),
    "Power": ("W", _POWER_UNITS, -MAX_POWER_KW * 1000, MAX_POWER_KW * 1000),
    "Current": ("A", {"A": 1.0}, -5_000.0, 5_000.0),
    "Voltage": ("V", {"V": 1.0}, 0.0, 2_000.0),
    "Frequency": ("", {"": 1.0}, 0.0, 1_000.0),
    "RPM": ("", {"": 1.0}, 0.0, 100_000.0),
    "SoC": ("Percent", {"Percent": 1.0}, 0.0, 100.0),
    "Temperature": ("Celsius", {"Celsius": 1.0, "K": 1.0, "Fahrenheit": 1.0}, 0.0, 0.0),
}
# Temperatures keep their unit: -100 to 200 degrees Celsius in each of them.
_TEMPERATURE_BOUNDS = {
    "Celsius": (-100.0, 200.0),
    "K": (173.0, 473.0),
    "Fahrenheit": (-148.0, 392.0),
}


class ImplausibleReading(ValueError):
    """A reading that is not a number, not finite, or outside its physical bounds."""


@dataclass(frozen=True)
class Reading:
    """A checked reading: `value` as sent (a float) and `base` in the measurand's base unit
    (Wh, W, A, V, Percent; temperatures as sent)."""

    measurand: str
    unit: str | None
    value: float
    base: float


@functools.lru_cache(maxsize=64)  # three readings a message, from a few measurands
def _family(measurand: str) -> str:
    for name in ("Power.Factor", "Energy", "Power", "Current", "Voltage", "Frequency", "RPM"):
        if measurand.startswith(name):
            return name
    return measurand


def check_reading(measurand: str, unit: str | None, text: str) -> Reading:
    """The reading `text` of `measurand` in `unit`, checked; ImplausibleReading if not."""
    if not isinstance(text, str) or len(text) > MAX_VALUE_CHARS or not _NUMBER.fullmatch(text):
        shown = text[:MAX_VALUE_CHARS] if isinstance(text, str) else type(text).__name__
        raise ImplausibleReading(f"{measurand}: {shown!r} is not a number")
    value = float(text)
    if not math.isfinite(value):
        raise ImplausibleReading(f"{measurand}: {text!r} is not a finite number")
    family = _family(measurand)
    bounds = _BOUNDS.get(family)
    if bounds is None:  # a measurand outside 1.6's list (a tolerated quirk): any unit
        if not -MAX_REGISTER_WH <= value <= MAX_REGISTER_WH:
            raise ImplausibleReading(f"{measurand}: {text} is outside ±{MAX_REGISTER_WH}")
        return Reading(measurand, unit, value, value)
    base_unit, factors, lower, upper = bounds
    used = base_unit if unit is None else unit
    if family in ("Frequency", "RPM", "Power.Factor") and unit is None:
        used = ""
    factor = factors.get(used)
    if factor is None:
        raise ImplausibleReading(f"{measurand}: unit {unit!r} does not fit")
    if family == "Temperature":
        lower, upper = _TEMPERATURE_BOUNDS[used]
    base = value * factor
    if not lower <= base <= upper:
        raise ImplausibleReading(f"{measurand}: {text} {used} is outside {lower:g}..{upper:g}")
    return Reading(measurand, unit, value, base)


def check_register(previous_wh: float | None, reading_wh: float) -> None:
    """An energy register does not run backwards within a transaction."""
    if previous_wh is not None and reading_wh < previous_wh:
        raise ImplausibleReading(
            f"energy register ran backwards from {previous_wh:g} Wh to {reading_wh:g} Wh"
        )


def max_energy_wh(power_kw: float, elapsed: timedelta) -> float:
    """The most energy a connector of `power_kw` can plausibly deliver in `elapsed`."""
    hours = max(elapsed.total_seconds(), 0.0) / 3600
    return power_kw * 1000 * hours * (1 + ENERGY_TOLERANCE) + ENERGY_ALLOWANCE_WH


def check_register_step(
    previous_wh: float, reading_wh: float, power_kw: float, elapsed: timedelta
) -> None:
    """An energy register rises no faster than its connector's power allows."""
    bound = max_energy_wh(power_kw, elapsed)
    if reading_wh - previous_wh > bound:
        raise ImplausibleReading(
            f"energy register rose {reading_wh - previous_wh:g} Wh in"
            f" {max(elapsed.total_seconds(), 0.0):g} s; a {power_kw:g} kW connector delivers"
            f" at most {bound:.0f} Wh in that time"
        )


def is_register(value: float) -> bool:
    """Whether `value` can be an energy register reading in Wh (as meterStart is)."""
    return 0 <= value <= MAX_REGISTER_WH


def check_meter(value: int, what: str) -> int:
    """meterStart or meterStop: an integer register reading in Wh within bounds."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ImplausibleReading(f"{what} must be an integer number of Wh")
    if not 0 <= value <= MAX_REGISTER_WH:
        raise ImplausibleReading(f"{what} {value} Wh is outside 0..{MAX_REGISTER_WH}")
    return value


@dataclass(frozen=True)
class SessionEnergy:
    """What a session is billed for; `review` says why the raw numbers were not used."""

    energy_wh: float
    review: str | None = None


def session_energy(
    meter_start: int,
    meter_stop: int,
    started: datetime,
    stopped: datetime,
    last_register_wh: float | None = None,
    max_power_kw: float | None = None,
    vouched: timedelta | None = None,
) -> SessionEnergy:
    """The energy to bill: meterStop - meterStart when both are plausible registers, the
    stop is not below the start and not before it in time, and the energy is no more than
    the connector (`max_power_kw`) can deliver in the time (the charger's, or the
    `vouched` part of it the server saw, when shorter); else the last plausible register
    reading of the session, else nothing, with a reason for an operator."""
    if stopped < started:
        return SessionEnergy(0.0, f"stop time {stopped:%Y-%m-%d %H:%M:%S} is before the start")
    elapsed = stopped - started if vouched is None else min(stopped - started, vouched)
    most = (
        float(MAX_REGISTER_WH)
        if max_power_kw is None
        else min(float(MAX_REGISTER_WH), max_energy_wh(max_power_kw, elapsed))
    )

    def plausible(energy: float) -> bool:
        return 0 <= meter_start <= MAX_REGISTER_WH and 0 <= energy <= most

    if not 0 <= meter_start <= MAX_REGISTER_WH:
        why = f"meterStart {meter_start} Wh is outside 0..{MAX_REGISTER_WH}"
    elif not 0 <= meter_stop <= MAX_REGISTER_WH:
        why = f"meterStop {meter_stop} Wh is outside 0..{MAX_REGISTER_WH}"
    elif meter_stop < meter_start:
        why = f"meterStop {meter_stop} Wh is below meterStart {meter_start} Wh"
    elif meter_stop - meter_start > most:
        why = (
            f"meterStop - meterStart is {meter_stop - meter_start} Wh, more than a"
            f" {max_power_kw:g} kW connector delivers in"
            f" {max(elapsed.total_seconds(), 0.0):g} s ({most:.0f} Wh)"
        )
    else:
        return SessionEnergy(float(meter_stop - meter_start))
    if last_register_wh is not None and plausible(last_register_wh - meter_start):
        return SessionEnergy(
            last_register_wh - meter_start, why + "; billed from the last meter reading"
        )
    return SessionEnergy(0.0, why + "; no energy billed, only the price's fixed part")


def vouched_start(
    claimed: datetime,
    received: datetime,
    connected_at: datetime,
    offline_since: datetime | None,
) -> datetime:
    """The earliest a start can have been, for the energy cap: the charger's `claimed`
    time when it came in at once (within LIVE_DELAY of its receipt), or when it falls while
    the charger was offline (after `offline_since`, when it was last heard before this
    connection, and before `connected_at`): a start queued offline and sent after
    reconnecting. A start claimed while the charger was connected and silent about it
    is vouched for only from its receipt (less LIVE_DELAY); one claimed while it was
    connected before, from when that connection went."""
    if claimed >= received - LIVE_DELAY:
        return claimed
    if claimed > connected_at + LIVE_DELAY:
        return received - LIVE_DELAY
    if offline_since is not None:
        return max(claimed, offline_since - LIVE_DELAY)
    return claimed


def trusted_time(reported: datetime, received: datetime) -> datetime:
    """When what a charger reports happened: its own timestamp, unless that is more than
    MAX_CLOCK_AHEAD after the server `received` it; then the receipt time, the latest the
    server can vouch for."""
    return received if reported - received > MAX_CLOCK_AHEAD else reported


def clock_skew(reported: datetime, now: datetime) -> timedelta | None:
    """How far a charger's timestamp is off when it is implausible (ahead of the server's
    clock, or before 2010); None when it may be right (old ones may be queued offline)."""
    if reported - now > MAX_CLOCK_AHEAD or reported < EARLIEST_PLAUSIBLE:
        return reported - now
    return None


def skew_text(skew: timedelta) -> str:
    """How far a clock is off, as a person reads it: whole seconds, minutes, hours or
    days, and which way ("5 min 8 s ahead of")."""
    seconds = round(abs(skew.total_seconds()))
    if seconds < 120:
        amount = f"{seconds} s"
    elif seconds < 2 * 3600:
        amount = f"{seconds // 60} min {seconds % 60} s"
    elif seconds < 2 * 86400:
        amount = f"{seconds // 3600} h {seconds % 3600 // 60} min"
    else:
        amount = f"{seconds // 86400} days"
    return f"{amount} {'ahead of' if skew > timedelta(0) else 'behind'}"
