"""Charging sessions (OCPP transactions), finished and running, and their CSV export."""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from PySide6.QtCore import QObject

from evcms_desktop.domain.outcome import outcome_reason
from evcms_desktop.domain.tariff import format_money
from evcms_desktop.store.models import ChargingTransaction, Station, utcnow
from evcms_desktop.store.sessions import (
    is_running,
    session_cost,
    session_energy,
    sessions_between,
)
from evcms_desktop.store.stations import station_calendar
from evcms_desktop.ui.formatting import DASH, fmt_datetime, fmt_duration, fmt_kwh, fmt_time
from evcms_desktop.ui.models.table import Column, RecordTableModel
from evcms_desktop.ui.sites import SiteLookup


class SessionsModel(RecordTableModel[ChargingTransaction]):
    def __init__(
        self,
        station: Station,
        clock: Callable[[], datetime] = utcnow,
        parent: QObject | None = None,
        sites: SiteLookup | None = None,
    ) -> None:
        self.station = station
        self.sites = sites or SiteLookup(station)
        self.site_ids = self.sites.ids  # the sites shown (the tab's filter)
        self.clock = clock
        self.calendar = station_calendar(station)
        self.tz = self.calendar.tz

        def tz(t: ChargingTransaction) -> ZoneInfo:
            return self.sites.tz(t.charge_point.station_id)

        columns = [
            Column("Charger", lambda t: t.charge_point.ident),
            Column("Connector", lambda t: str(t.connector_number), lambda t: t.connector_number),
            Column("Start", lambda t: fmt_datetime(t.started_at, tz(t)), lambda t: t.started_at),
            Column(
                "End",
                lambda t: "running" if is_running(t) else fmt_time(t.stopped_at, tz(t)),
                lambda t: t.stopped_at or self.clock(),
            ),
            Column(
                "Time taken",
                lambda t: fmt_duration(self.time_taken(t)),
                lambda t: self.time_taken(t).total_seconds(),
                True,
            ),
            Column(
                "Energy",
                lambda t: fmt_kwh(session_energy(t)),
                lambda t: session_energy(t) or 0,
                True,
            ),
            Column("Cost", self.cost_text, self.cost, True),
            Column(
                "Booked",
                lambda t: fmt_kwh(t.booking.energy_kwh) if t.booking_id else DASH,
                lambda t: t.booking.energy_kwh if t.booking_id else 0,
                True,
            ),
            Column("Quoted", self.quote_text, self.quote, True),
            Column("Booking", lambda t: t.booking.code if t.booking_id else DASH),
            Column("Stop reason", lambda t: t.stop_reason or DASH),
            Column("Quote vs bill", self.difference),
            Column("Review", lambda t: t.review or DASH),
        ]
        if self.sites.several:  # beside the charger, where a narrow screen still shows it
            site = Column("Site", lambda t: self.sites.name(t.charge_point.station_id))
            columns.insert(1, site)
        super().__init__(columns, parent)

    def _currency(self, tx: ChargingTransaction) -> str:
        return self.sites.currency(tx.charge_point.station_id)

    def cost(self, tx: ChargingTransaction) -> Decimal:
        site = tx.charge_point.station_id
        return session_cost(tx, self.sites.tariff(site), self.sites.calendar(site), self.clock())

    def cost_text(self, tx: ChargingTransaction) -> str:
        cost = self.cost(tx)
        money = format_money(cost, self._currency(tx))
        return f"{money} so far" if is_running(tx) else money

    def quote(self, tx: ChargingTransaction) -> Decimal:
        return tx.booking.price_total if tx.booking_id else Decimal(0)

    def quote_text(self, tx: ChargingTransaction) -> str:
        if not tx.booking_id:
            return DASH
        return format_money(tx.booking.price_total, self._currency(tx))

    def difference(self, tx: ChargingTransaction) -> str:
        """Why the bill is not the quote; "as quoted" when it is."""
        if not tx.booking_id:
            return "no booking"
        if is_running(tx) or tx.energy_kwh is None or tx.price_total is None:
            return "running"
        booking = tx.booking
        reason = outcome_reason(
            booking.energy_kwh, booking.price_total, tx.energy_kwh, tx.price_total
        )
        return reason or "as quoted"

    def time_taken(self, tx: ChargingTransaction) -> timedelta:
        return (tx.stopped_at or self.clock()) - tx.started_at

    def load(self, start: datetime, end: datetime) -> None:
        records = sessions_between(self.site_ids, start, end)
        self.set_records(records)

    def export_csv(self, path: Path) -> int:
        """Write the sessions shown to `path` (local ISO times, plain numbers); returns rows."""
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(
                [
                    "transaction_id",
                    "charger",
                    "connector",
                    "start",
                    "end",
                    "minutes",
                    "energy_kwh",
                    "cost",
                    "currency",
                    "booking",
                    "id_tag",
                    "stop_reason",
                ]
            )
            for tx in self.records():
                energy = session_energy(tx)
                tz = self.sites.tz(tx.charge_point.station_id)
                writer.writerow(
                    [
                        tx.id,
                        tx.charge_point.ident,
                        tx.connector_number,
                        tx.started_at.astimezone(tz).isoformat(timespec="seconds"),
                        ""
                        if tx.stopped_at is None
                        else tx.stopped_at.astimezone(tz).isoformat(timespec="seconds"),
                        round(self.time_taken(tx).total_seconds() / 60, 1),
                        "" if energy is None else f"{energy:.3f}",
                        "" if tx.price_total is None else f"{tx.price_total:.2f}",
                        self._currency(tx),
                        tx.booking.code if tx.booking_id else "",
                        tx.id_tag,
                        tx.stop_reason or "",
                    ]
                )
        return len(self.records())
