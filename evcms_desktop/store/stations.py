"""Stations and their connectors, turned into the domain's Site."""

from __future__ import annotations

import functools
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import peewee

from evcms_desktop.domain.peak import PeakCalendar, default_week
from evcms_desktop.domain.site import ConnectorSpec, Site
from evcms_desktop.domain.tariff import Tariff
from evcms_desktop.store.models import (
    ChargePoint,
    ChargePointState,
    Connector,
    Station,
    connector_label,
    database_proxy,
)


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


def _engine() -> type[peewee.Database]:
    return type(database_proxy.obj)


@functools.cache
def _station_sql(engine: type[peewee.Database]) -> str:
    return Station.select().where(Station.id == 0).sql()[0]


@functools.cache
def _site_connectors_sql(engine: type[peewee.Database]) -> str:
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
    """The station as the booking logic sees it."""
    rows = Connector._meta.database.execute_sql(
        _site_connectors_sql(_engine()), (station.id, ChargePointState.APPROVED.value)
    )
    return Site(
        name=station.name,
        connectors=tuple(
            ConnectorSpec(
                id=cid, label=connector_label(ident, number), max_power_kw=Decimal(max_power)
            )
            for cid, ident, number, max_power in rows
        ),
        tariff=station_tariff(station),
        calendar=station_calendar(station),
        step=timedelta(minutes=station.step_minutes),
        horizon=timedelta(hours=station.horizon_hours),
    )
