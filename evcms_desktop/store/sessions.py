"""Charging sessions (OCPP transactions) read from the store, their energy and price.

The price of a session is worked out here once, for the stop (final) and for a running
session's cost so far: Eq. (8) with the booking's multiplier and rule, or, for a session
without a booking (an operator's remote start with another idTag), as a free slot at the
time it ran.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import peewee

from evcms_desktop.domain.peak import PeakCalendar
from evcms_desktop.domain.readings import (
    POWER_IMPORT,
    SOC,
    Quantity,
    decode_sample,
    session_energy_kwh,
)
from evcms_desktop.domain.tariff import (
    PriceBreakdown,
    PricingRule,
    Tariff,
    availability_cost_multiplier,
)
from evcms_desktop.store.models import (
    Booking,
    BookingState,
    ChargePoint,
    ChargingTransaction,
    Connector,
    MeterValue,
    Station,
    TransactionState,
)
from evcms_desktop.store.stations import Sites, ids_of


def session_price(
    tariff: Tariff,
    calendar: PeakCalendar,
    booking: Booking | None,
    energy_kwh: Decimal,
    started: datetime,
    until: datetime,
) -> PriceBreakdown:
    """Eq. (8) for a session that delivered `energy_kwh` from `started` to `until`."""
    if booking is not None:
        return tariff.price(
            energy_kwh, booking.acm, peak_on=booking.peak_on, rule=PricingRule(booking.rule)
        )
    peak_on = calendar.is_peak_on(started, until)
    return tariff.price(energy_kwh, availability_cost_multiplier(False, peak_on))


def session_energy(tx: ChargingTransaction) -> Decimal | None:
    """The final energy of a finished session; a running one's from its last reading."""
    if tx.energy_kwh is not None:
        return tx.energy_kwh
    return session_energy_kwh(tx.last_energy_wh, tx.meter_start_wh)


def session_cost(
    tx: ChargingTransaction, tariff: Tariff, calendar: PeakCalendar, now: datetime
) -> Decimal:
    """The final price of a finished session; a running one's price so far."""
    if tx.price_total is not None:
        return tx.price_total
    booking = tx.booking if tx.booking_id is not None else None
    energy = session_energy(tx) or Decimal(0)
    return session_price(tariff, calendar, booking, energy, tx.started_at, now).total


def is_running(tx: ChargingTransaction) -> bool:
    return tx.state == TransactionState.ACTIVE.value


def sessions_between(sites: Sites, start: datetime, end: datetime) -> list[ChargingTransaction]:
    """The sessions of a site (or of several) that ran at some time in [start, end),
    newest first."""
    return list(
        ChargingTransaction.select(ChargingTransaction, ChargePoint, Booking)
        .join(ChargePoint)
        .switch(ChargingTransaction)
        .join(Booking, join_type=peewee.JOIN.LEFT_OUTER)
        .where(
            ChargePoint.station.in_(ids_of(sites))
            & (ChargingTransaction.started_at < end)
            & (
                (ChargingTransaction.stopped_at.is_null())
                | (ChargingTransaction.stopped_at >= start)
            )
        )
        .order_by(ChargingTransaction.started_at.desc())
    )


def latest_sessions(
    station: Station, limit: int, running_only: bool = False, include_refused: bool = False
) -> list[ChargingTransaction]:
    """The station's `limit` most recent sessions, newest first: in the order the server
    received them (the id), not by the charger's start time, which a charger can set to
    anything. Refused starts are left out unless asked for."""
    query = (
        ChargingTransaction.select(ChargingTransaction, ChargePoint)
        .join(ChargePoint)
        .where(ChargePoint.station == station)
        .order_by(ChargingTransaction.id.desc())
        .limit(limit)
    )
    if running_only:
        query = query.where(ChargingTransaction.state == TransactionState.ACTIVE.value)
    elif not include_refused:
        query = query.where(ChargingTransaction.state != TransactionState.REFUSED.value)
    return list(query)


def stored_samples(ident: str, connector: int, since: datetime) -> list[tuple[float, float, float]]:
    """The running transaction's stored (time, kW, SoC) samples since `since`; NaN where a
    time has only one of them."""
    tx = (
        ChargingTransaction.select()
        .join(ChargePoint)
        .where(
            (ChargePoint.ident == ident)
            & (ChargingTransaction.connector_number == connector)
            & (ChargingTransaction.state == TransactionState.ACTIVE.value)
        )
        .first()
    )
    if tx is None:
        return []
    by_time: dict[float, list[float]] = {}
    for mv in (
        MeterValue.select()
        .where(
            (MeterValue.transaction == tx)
            & (MeterValue.timestamp >= since)
            & (MeterValue.measurand.in_([POWER_IMPORT, SOC]))
        )
        .order_by(MeterValue.timestamp)
    ):
        reading = decode_sample(mv.measurand, mv.value, mv.unit, mv.phase)
        if reading is None:
            continue
        quantity, number = reading
        slot = by_time.setdefault(mv.timestamp.timestamp(), [math.nan, math.nan])
        slot[1 if quantity is Quantity.SOC else 0] = number
    return [(t, p, s) for t, (p, s) in sorted(by_time.items())]


@dataclass(frozen=True)
class Bill:
    """What a booking's finished sessions delivered and were billed, together."""

    energy_kwh: Decimal
    price_total: Decimal


def bills_of(booking_ids: Iterable[int]) -> dict[int, Bill]:
    """The bill of each of these bookings that has finished sessions (priced ones)."""
    ids = list(booking_ids)
    bills: dict[int, Bill] = {}
    for chunk in range(0, len(ids), 500):
        rows = ChargingTransaction.select(
            ChargingTransaction.booking,
            ChargingTransaction.energy_kwh,
            ChargingTransaction.price_total,
        ).where(
            ChargingTransaction.booking.in_(ids[chunk : chunk + 500])
            & (ChargingTransaction.state == TransactionState.FINISHED.value)
            & ChargingTransaction.energy_kwh.is_null(False)
            & ChargingTransaction.price_total.is_null(False)
        )
        for tx in rows:
            booking_id = tx.booking_id
            if booking_id is None:  # cannot be: the query asks for these bookings
                continue
            before = bills.get(booking_id, Bill(Decimal(0), Decimal(0)))
            bills[booking_id] = Bill(
                before.energy_kwh + Decimal(tx.energy_kwh),
                before.price_total + Decimal(tx.price_total),
            )
    return bills


# Connector statuses with a car plugged in (OCPP 1.6 ChargePointStatus).
OCCUPIED_STATUSES = ("Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing")


def overstaying(now: datetime, grace: timedelta, sites: Collection[int]) -> list[Booking]:
    """The bookings of `sites` whose end (and `grace`) has passed while their car still
    occupies the connector: it reports a car plugged in, and its latest session is the
    booking's."""
    candidates = (
        Booking.select(Booking, Connector, ChargePoint)
        .join(Connector)
        .join(ChargePoint)
        .where(
            Booking.state.in_([BookingState.CHARGING.value, BookingState.COMPLETED.value])
            & (Booking.end <= now - grace)
            & (Booking.end > now - timedelta(days=1))
            & Booking.station.in_(list(sites))
            & Connector.status.in_(OCCUPIED_STATUSES)
        )
    )
    found = []
    for booking in candidates:
        latest = (
            ChargingTransaction.select(ChargingTransaction.booking)
            .where(
                (ChargingTransaction.charge_point == booking.connector.charge_point)
                & (ChargingTransaction.connector_number == booking.connector.number)
            )
            .order_by(ChargingTransaction.started_at.desc())
            .first()
        )
        if latest is not None and latest.booking_id == booking.id:
            found.append(booking)
    return found


Reading = tuple[str, int, int, float | None, float | None, float | None]


def running_readings(limit: int = 1000) -> list[Reading]:
    """The latest reading of each running transaction, as the nodes' writers keep it:
    (charger, connector, transaction id, energy Wh, power kW, SoC), at most `limit`."""
    query = (
        ChargingTransaction.select(
            ChargePoint.ident,
            ChargingTransaction.connector_number,
            ChargingTransaction.id,
            ChargingTransaction.last_energy_wh,
            ChargingTransaction.last_power_kw,
            ChargingTransaction.last_soc,
        )
        .join(ChargePoint)
        .where(ChargingTransaction.state == TransactionState.ACTIVE)
        .order_by(ChargingTransaction.id.desc())
        .limit(limit)
        .tuples()
    )
    return list(query)  # type: ignore[arg-type]  # .tuples() rows
