"""Bookings of the station (or of the sites its filter shows) between two local dates,
optionally of one state."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from PySide6.QtCore import QObject
from PySide6.QtGui import QColor

from evcms_desktop.domain.outcome import outcome_reason
from evcms_desktop.domain.tariff import format_money
from evcms_desktop.store.bookings import bookings_between
from evcms_desktop.store.models import Booking, Station
from evcms_desktop.store.sessions import Bill, bills_of
from evcms_desktop.store.stations import local_day_bounds, station_calendar
from evcms_desktop.ui.formatting import DASH, fmt_datetime, fmt_kw, fmt_kwh, fmt_time, state_text
from evcms_desktop.ui.models.table import Column, RecordTableModel
from evcms_desktop.ui.sites import SiteLookup
from evcms_desktop.ui.theme import BOOKING_COLOURS

NO_BILL = Bill(Decimal(0), Decimal(0))
PLAN_NAMES = {0: "As asked", 1: "1 Duration", 2: "2 Power", 3: "3 Duration Eco", 4: "4 Power Eco"}


class BookingsModel(RecordTableModel[Booking]):
    def __init__(
        self, station: Station, parent: QObject | None = None, sites: SiteLookup | None = None
    ) -> None:
        tz = station_calendar(station).tz
        self.sites = sites = sites or SiteLookup(station)
        self.site_ids = sites.ids  # the sites shown (the tab's filter)

        def currency(b: Booking) -> str:
            return sites.currency(b.station_id)

        columns = [
            Column("Booking ID", lambda b: b.code),
            Column(
                "Start", lambda b: fmt_datetime(b.start, sites.tz(b.station_id)), lambda b: b.start
            ),
            Column("End", lambda b: fmt_time(b.end, sites.tz(b.station_id)), lambda b: b.end),
            Column("Connector", lambda b: b.connector.label),
            Column("Energy", lambda b: fmt_kwh(b.energy_kwh), lambda b: b.energy_kwh, True),
            Column("Power", lambda b: fmt_kw(b.power_kw), lambda b: b.power_kw, True),
            Column("Plan", lambda b: PLAN_NAMES.get(b.plan, str(b.plan))),
            Column(
                "Quoted",
                lambda b: format_money(b.price_total, currency(b)),
                lambda b: b.price_total,
                True,
            ),
            Column(
                "Delivered",
                lambda b: fmt_kwh(self._bill(b).energy_kwh) if b.id in self.bills else DASH,
                lambda b: self._bill(b).energy_kwh,
                True,
            ),
            Column(
                "Billed",
                lambda b: (
                    format_money(self._bill(b).price_total, currency(b))
                    if b.id in self.bills
                    else DASH
                ),
                lambda b: self._bill(b).price_total,
                True,
            ),
            Column("Quote vs bill", self.difference),
            Column(
                "State",
                lambda b: state_text(b.state),
                colour=lambda b: QColor(BOOKING_COLOURS.get(b.state, "#202020")),
            ),
            Column("Driver", lambda b: b.driver_name or DASH),
        ]
        if sites.several:  # beside the id, where a narrow screen still shows it
            columns.insert(1, Column("Site", lambda b: sites.name(b.station_id)))
        super().__init__(columns, parent)
        self.station = station
        self.bills: dict[int, Bill] = {}
        self.first = self.last = datetime.now(tz).date()
        self.state: str | None = None

    def load(self, first: date, last: date, state: str | None = None) -> None:
        self.first, self.last, self.state = first, last, state
        self.refresh()

    def refresh(self) -> None:
        start, end = local_day_bounds(self.station, self.first, self.last)
        rows = bookings_between(self.site_ids, start, end, self.state)
        self.bills = bills_of(b.id for b in rows)
        self.set_records(rows)

    def _bill(self, booking: Booking) -> Bill:
        return self.bills.get(booking.id, NO_BILL)

    def difference(self, booking: Booking) -> str:
        """Why the bill is not the quote; the price is a quote until a session is billed."""
        bill = self.bills.get(booking.id)
        if bill is None:
            return "quote (not billed yet)"
        reason = outcome_reason(
            booking.energy_kwh, booking.price_total, bill.energy_kwh, bill.price_total
        )
        return reason or "as quoted"
