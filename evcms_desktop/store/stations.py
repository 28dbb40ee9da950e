"""Stations (sites) and their connectors, turned into the domain's Site; adding and
finding sites."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import peewee
from peewee import fn

from evcms_desktop.domain.peak import PeakCalendar, default_week
from evcms_desktop.domain.site import ConnectorSpec, Site
from evcms_desktop.domain.station_settings import SettingError, currency_code
from evcms_desktop.domain.tariff import Tariff
from evcms_desktop.domain.validation import connector_power_kw
from evcms_desktop.store.kiosk_pin import kiosk_pin_key
from evcms_desktop.store.models import (
    BLOCKING_STATES,
    Booking,
    BookingState,
    ChargePoint,
    ChargePointState,
    ChargingTransaction,
    Connector,
    Operator,
    Setting,
    Station,
    TransactionState,
    connector_label,
    database_proxy,
)

log = logging.getLogger(__name__)


def default_station() -> Station:
    return Station.select().order_by(Station.id).get()


def station_tariff(station: Station) -> Tariff:
    return Tariff(
        energy_price=station.energy_price,
        max_power_kw=station.max_power_kw,
        efficiency=station.efficiency,
        peak_demand_charge=station.peak_demand_charge,
        service_charge=station.service_charge,
        currency=station.currency,
    )


def station_calendar(station: Station) -> PeakCalendar:
    if station.peak_windows is None:
        return PeakCalendar(tz_name=station.timezone, week=default_week())
    return PeakCalendar.from_description(station.timezone, station.peak_windows)


def local_day_bounds(station: Station, first: date, last: date) -> tuple[datetime, datetime]:
    """UTC instants of local midnight on `first` and local midnight after `last`."""
    tz = station_calendar(station).tz
    start = datetime.combine(first, time(0), tz)
    end = datetime.combine(last + timedelta(days=1), time(0), tz)
    return start, end


def bookable_connectors(station: Station) -> list[Connector]:
    """Connectors of the station's approved charge points, in a stable order."""
    return list(
        Connector.select(Connector, ChargePoint)
        .join(ChargePoint)
        .where((ChargePoint.station == station) & (ChargePoint.state == ChargePointState.APPROVED))
        .order_by(ChargePoint.ident, Connector.number)
    )


# Every plan request reads the station and its connectors. Building a peewee query costs
# about 0.2 ms, several times what SQLite takes to answer it, so these two are compiled
# once per engine; the text depends only on the models and the engine's dialect, the
# values are bound at each run.


def _engine() -> str:
    """The bound database's kind, the key of the SQL compiled once per engine."""
    return type(database_proxy.obj).__name__


@functools.cache
def _station_sql(engine: str) -> str:
    return Station.select().where(Station.id == 0).sql()[0]


@functools.cache
def _site_connectors_sql(engine: str) -> str:
    query = (
        Connector.select(Connector.id, ChargePoint.ident, Connector.number, Connector.max_power_kw)
        .join(ChargePoint)
        .where((ChargePoint.station == 0) & (ChargePoint.state == ChargePointState.APPROVED))
        .order_by(ChargePoint.ident, Connector.number)
    )
    return query.sql()[0]


def reload_station(station_id: int) -> Station:
    """The station row as stored now (settings saved elsewhere included)."""
    found = list(Station.raw(_station_sql(_engine()), station_id))
    if not found:
        raise Station.DoesNotExist(f"station {station_id}")
    return found[0]


def load_site(station: Station) -> Site:
    """The station as the booking logic sees it. A connector whose stored maximum power is
    not usable (e.g. written by an older version) is left out and logged, naming its
    charger, rather than crashing every plan."""
    rows = Connector._meta.database.execute_sql(
        _site_connectors_sql(_engine()), (station.id, ChargePointState.APPROVED.value)
    )
    connectors: list[ConnectorSpec] = []
    for cid, ident, number, max_power in rows:
        try:
            power = connector_power_kw(max_power)
        except ValueError as exc:
            log.warning("Charger %r connector %s cannot be booked: %s", ident, number, exc)
            continue
        connectors.append(
            ConnectorSpec(id=cid, label=connector_label(ident, number), max_power_kw=power)
        )
    return Site(
        name=station.name,
        connectors=tuple(connectors),
        tariff=station_tariff(station),
        calendar=station_calendar(station),
        step=timedelta(minutes=station.step_minutes),
        horizon=timedelta(hours=station.horizon_hours),
    )


def connector_power_of(charge_point_id: int, number: int) -> float | None:
    """A connector's stored maximum power in kW; None when it is missing or unusable."""
    stored = (
        Connector.select(Connector.max_power_kw)
        .where((Connector.charge_point == charge_point_id) & (Connector.number == number))
        .scalar()
    )
    try:
        return None if stored is None else float(connector_power_kw(stored))
    except ValueError:
        return None


# -- sites ---------------------------------------------------------------------------

SITE_NAME_MAX = 80


class SiteError(ValueError):
    """A site that does not exist, or cannot be made as asked; said in one line."""


def list_stations() -> list[Station]:
    return list(Station.select().order_by(Station.id))


Sites = Station | Sequence[int]  # one site, or the ids of several (a console's site filter)


def ids_of(sites: Sites) -> list[int]:
    """The site ids a query is about."""
    return [sites.id] if isinstance(sites, Station) else [int(site) for site in sites]


def of_site(sites: Sites) -> Any:
    """Where a charger is one these sites see: their own, or a Pending one no site has
    yet (approving it from a site puts it there, and the other sites no longer see it)."""
    return ChargePoint.station.in_(ids_of(sites)) | (
        ChargePoint.station.is_null() & (ChargePoint.state == ChargePointState.PENDING.value)
    )


def site_ids() -> list[int]:
    return [row.id for row in Station.select(Station.id).order_by(Station.id)]


def find_station(name: str) -> Station:
    """The site with this name (in any case) or number."""
    text = name.strip()
    found = Station.get_or_none(fn.LOWER(Station.name) == text.lower())
    if found is None and text.isascii() and text.isdigit():
        found = Station.get_or_none(Station.id == int(text))
    if found is None:
        names = ", ".join(repr(s.name) for s in list_stations())
        raise SiteError(f"No site is named {text!r}; the sites are {names}.")
    return found


def checked_site_name(name: str) -> str:
    """A site's name as stored: 1 to SITE_NAME_MAX printable characters, trimmed."""
    name = name.strip()
    if not name or len(name) > SITE_NAME_MAX or not name.isprintable():
        raise SiteError(f"A site's name is 1 to {SITE_NAME_MAX} printable characters.")
    return name


def _site_decimal(value: Decimal | str, what: str, upper: Decimal) -> Decimal:
    try:
        number = Decimal(value)
    except (InvalidOperation, TypeError):
        raise SiteError(f"{what} {value!r} is not a number.") from None
    if not number.is_finite() or number < 0 or number > upper:
        raise SiteError(f"{what} must be between 0 and {upper}, not {value}.")
    return number


def add_station(
    name: str,
    *,
    timezone: str = "Europe/London",
    currency: str = "GBP",
    energy_price: Decimal | str | None = None,
    site_power_limit_kw: Decimal | str | None = None,
) -> Station:
    """A new site: its own tariff (the defaults unless given), time zone and chargers."""
    name = checked_site_name(name)
    if Station.select().where(fn.LOWER(Station.name) == name.lower()).exists():
        raise SiteError(f"A site named {name!r} exists already.")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SiteError(f"{timezone!r} is not a time zone (e.g. Europe/Paris).") from None
    try:
        code = currency_code(currency)  # the rule Settings uses: either case, stored upper
    except SettingError as exc:
        raise SiteError(f"{exc}.") from None
    fields: dict[str, object] = {"name": name, "timezone": timezone, "currency": code}
    if energy_price is not None:
        fields["energy_price"] = _site_decimal(energy_price, "The energy price", Decimal(100))
    if site_power_limit_kw is not None:
        fields["site_power_limit_kw"] = _site_decimal(
            site_power_limit_kw, "The site power limit", Decimal(100_000)
        )
    return Station.create(**fields)


def charge_point_station(ident: str) -> int | None:
    """The site (station id) of the charger with this OCPP id, if it is known."""
    row = ChargePoint.select(ChargePoint.station).where(ChargePoint.ident == ident).first()
    return None if row is None else row.station_id


# Every connection looks up its charger, its station and its connectors, and every boot
# records itself: in a reconnect storm after a restart that is a thousand of each within
# seconds, so these are compiled once per engine too.


@functools.cache
def _charge_point_sql(engine: str, by: str) -> str:
    return ChargePoint.select().where(getattr(ChargePoint, by) == 0).sql()[0]


@functools.cache
def _connector_numbers_sql(engine: str) -> str:
    return Connector.select(Connector.number).where(Connector.charge_point == 0).sql()[0]


_BOOT_FIELDS = (
    ChargePoint.vendor,
    ChargePoint.model,
    ChargePoint.serial_number,
    ChargePoint.firmware_version,
    ChargePoint.last_boot_at,
    ChargePoint.last_seen_at,
)


@functools.cache
def _boot_sql(engine: str) -> str:
    mark = database_proxy.obj.param
    columns = ", ".join(f'"{f.column_name}" = {mark}' for f in _BOOT_FIELDS)
    return f'UPDATE "{ChargePoint._meta.table_name}" SET {columns} WHERE "id" = {mark}'


def _charge_point_by(by: str, value: object) -> ChargePoint | None:
    found = list(ChargePoint.raw(_charge_point_sql(_engine(), by), value))
    if not found:
        return None
    cp = found[0]
    if cp.station_id is not None:  # a Pending charger has no site yet
        cp.station = reload_station(cp.station_id)
    return cp


def charge_point_with_station(ident: str) -> ChargePoint | None:
    """The charger with this OCPP id, its station loaded with it."""
    return _charge_point_by("ident", ident)


def connector_numbers(charge_point_id: int) -> set[int]:
    """The numbers of a charger's connectors."""
    rows = Connector._meta.database.execute_sql(
        _connector_numbers_sql(_engine()), (charge_point_id,)
    )
    return {number for (number,) in rows}


def record_boot(
    charge_point_id: int,
    vendor: str,
    model: str,
    serial_number: str | None,
    firmware_version: str | None,
    at: datetime,
) -> ChargePoint:
    """Store what a BootNotification says; the charger as stored now (an operator may
    have approved it meanwhile), with its station."""
    values = (vendor, model, serial_number, firmware_version, at, at)
    params = [f.db_value(v) for f, v in zip(_BOOT_FIELDS, values, strict=True)]
    ChargePoint._meta.database.execute_sql(_boot_sql(_engine()), (*params, charge_point_id))
    cp = _charge_point_by("id", charge_point_id)
    if cp is None:
        raise ChargePoint.DoesNotExist(f"charge point {charge_point_id}")
    return cp


def charger_count(station: Station) -> int:
    return ChargePoint.select().where(ChargePoint.station == station).count()


def continues_past_booked_energy(booking_id: int | None) -> bool:
    """Whether the site of this booking lets its sessions go on past the booked energy,
    the extra billed (by default they are stopped there: the plan is the contract)."""
    if booking_id is None:
        return False
    value = (
        Station.select(Station.continue_past_booked_energy)
        .join(Booking, on=(Booking.station == Station.id))
        .where(Booking.id == booking_id)
        .scalar()
    )
    return bool(value)


def set_continue_past_booked_energy(station: Station, value: bool) -> None:
    Station.update(continue_past_booked_energy=value).where(Station.id == station.id).execute()
    station.continue_past_booked_energy = value


@dataclass(frozen=True)
class ConnectorReservation:
    """A connector of a charger, its reported status, and the booking it is reserved for."""

    number: int
    status: str
    booking_code: str | None = None
    reservation_id: int | None = None  # a mirrored booking's is the booking's id
    booking_start: datetime | None = None


def connector_reservations(ident: str) -> list[ConnectorReservation]:
    """Each connector of a charger with the booking reservation sent to it, if any."""
    connectors = list(
        Connector.select(Connector)
        .join(ChargePoint)
        .where(ChargePoint.ident == ident)
        .order_by(Connector.number)
    )
    mirrored = {
        b.connector.id: b
        for b in Booking.select(Booking, Connector)
        .join(Connector)
        .where(
            Connector.id.in_([c.id for c in connectors])
            & Booking.reservation_sent
            & (Booking.state == BookingState.CONFIRMED.value)
        )
        .order_by(Booking.start)
    }
    rows = []
    for c in connectors:
        booking = mirrored.get(c.id)
        rows.append(
            ConnectorReservation(
                c.number,
                c.status,
                booking.code if booking else None,
                booking.id if booking else None,
                booking.start if booking else None,
            )
        )
    return rows


@dataclass(frozen=True)
class ChargerListing:
    """The chargers of some sites as a console lists them: not removed, by id, with their
    connectors (by number) and each connector's running session."""

    charge_points: list[ChargePoint]
    connectors: dict[int, list[Connector]]  # charge point id: its connectors
    running: dict[tuple[int, int], ChargingTransaction]  # (charge point id, connector)


def chargers_of(sites: Sites) -> ChargerListing:
    charge_points = list(
        ChargePoint.select()
        .where(of_site(sites) & (ChargePoint.state != ChargePointState.REMOVED.value))
        .order_by(ChargePoint.ident)
    )
    connectors: dict[int, list[Connector]] = {}
    query = Connector.select().where(Connector.charge_point.in_(charge_points))
    for c in query.order_by(Connector.number):
        connectors.setdefault(c.charge_point_id, []).append(c)  # type: ignore[attr-defined]
    running = {
        (tx.charge_point_id, tx.connector_number): tx  # type: ignore[attr-defined]
        for tx in ChargingTransaction.select(ChargingTransaction, Booking)
        .join(Booking, join_type=peewee.JOIN.LEFT_OUTER)
        .where(ChargingTransaction.state == TransactionState.ACTIVE.value)
    }
    return ChargerListing(charge_points, connectors, running)


def rename_station(station: Station, new_name: str) -> Station:
    """Give a site another name (what --site says); unique in any case."""
    name = checked_site_name(new_name)
    taken = Station.select().where(fn.LOWER(Station.name) == name.lower(), Station.id != station.id)
    if taken.exists():
        raise SiteError(f"A site named {name!r} exists already.")
    Station.update(name=name).where(Station.id == station.id).execute()
    return Station.get_by_id(station.id)


def removal_refusal(station: Station, now: datetime) -> str | None:
    """Why the site cannot be removed now, in one line; None when it can. A site goes only
    once it is bare: no charger, no booking still to come, nobody working there only, no
    session kept for its accounts, and another site left."""
    name = station.name
    if Station.select().count() <= 1:
        return f"{name!r} is the only site: a database keeps one."
    chargers = (
        ChargePoint.select()
        .where(ChargePoint.station == station, ChargePoint.state != ChargePointState.REMOVED)
        .count()
    )
    if chargers:
        return f"{name!r} still has {chargers} charger(s): remove them first (chargers remove)."
    coming = (
        Booking.select()
        .where(Booking.station == station, Booking.end > now, Booking.state.in_(BLOCKING_STATES))
        .count()
    )
    if coming:
        return f"{name!r} still has {coming} booking(s) to come: cancel them first."
    people = Operator.select().where(Operator.site == station).count()
    if people:
        return f"{people} operator(s) work at {name!r} only: move them first (operators set)."
    sessions = (
        ChargingTransaction.select().join(ChargePoint).where(ChargePoint.station == station).count()
    )
    if sessions:
        return f"{name!r} keeps {sessions} charging session(s) for its accounts: it stays."
    return None


def remove_station(station: Station, now: datetime) -> None:
    """Remove a bare site (see `removal_refusal`) with its past bookings and settings."""
    with database_proxy.atomic():
        refusal = removal_refusal(station, now)
        if refusal is not None:
            raise SiteError(refusal)
        Setting.delete().where(Setting.key == kiosk_pin_key(station.id)).execute()
        try:
            with database_proxy.atomic():
                station.delete_instance()
        except peewee.IntegrityError as exc:
            raise SiteError(f"{station.name!r} cannot be removed: {exc}".splitlines()[0]) from None
