"""Stations and their connectors, turned into the domain's Site."""

from __future__ import annotations

from datetime import timedelta

from evcms_desktop.domain.peak import PeakCalendar, default_week
from evcms_desktop.domain.site import ConnectorSpec, Site
from evcms_desktop.domain.tariff import Tariff
from evcms_desktop.store.models import (
    ChargePoint,
    ChargePointState,
    Connector,
    Station,
    connector_label,
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


def bookable_connectors(station: Station) -> list[Connector]:
    """Connectors of the station's approved charge points, in a stable order."""
    return list(
        Connector.select(Connector, ChargePoint)
        .join(ChargePoint)
        .where((ChargePoint.station == station) & (ChargePoint.state == ChargePointState.APPROVED))
        .order_by(ChargePoint.ident, Connector.number)
    )


def load_site(station: Station) -> Site:
    """The station as the booking logic sees it (read as plain rows: every plan does this)."""
    rows = (
        Connector.select(Connector.id, ChargePoint.ident, Connector.number, Connector.max_power_kw)
        .join(ChargePoint)
        .where((ChargePoint.station == station) & (ChargePoint.state == ChargePointState.APPROVED))
        .order_by(ChargePoint.ident, Connector.number)
        .tuples()
    )
    return Site(
        name=station.name,
        connectors=tuple(
            ConnectorSpec(id=cid, label=connector_label(ident, number), max_power_kw=max_power)
            for cid, ident, number, max_power in rows
        ),
        tariff=station_tariff(station),
        calendar=station_calendar(station),
        step=timedelta(minutes=station.step_minutes),
        horizon=timedelta(hours=station.horizon_hours),
    )
