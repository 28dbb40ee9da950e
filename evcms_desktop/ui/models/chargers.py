"""Every charge point and connector, live: one row per connector, updated in place.

Rows come from the store; the central system's events change single cells, collected and
announced with dataChanged a few times a second so that 200 chargers sending meter values
cost a handful of repaints, not thousands.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import peewee
from PySide6.QtCore import QObject, QTimer

from evcms_desktop.csms.events import CsmsEvent, EventKind
from evcms_desktop.domain.outcome import running_beside_quote
from evcms_desktop.domain.readings import session_energy_kwh
from evcms_desktop.store.models import (
    Booking,
    ChargePointState,
    ChargingTransaction,
    Connector,
    Station,
    TransactionState,
    utcnow,
)
from evcms_desktop.store.sessions import session_price
from evcms_desktop.store.stations import Sites, chargers_of, station_calendar
from evcms_desktop.ui.formatting import (
    DASH,
    fmt_clock,
    fmt_duration,
    fmt_kw,
    fmt_kwh,
    fmt_percent,
)
from evcms_desktop.ui.models.table import Column, RecordTableModel
from evcms_desktop.ui.sites import SiteLookup
from evcms_desktop.ui.theme import status_colours

log = logging.getLogger(__name__)


# Events after which a connector's session is read again from the store. The central
# system writes in batches, so the read waits for the next flush of this model.
SESSION_KINDS = {
    EventKind.EV_CONNECTED,
    EventKind.CHARGING_STARTED,
    EventKind.SESSION_STOPPED,
    EventKind.FULLY_CHARGED,
}


@dataclass(frozen=True)
class ChargerRow:
    ident: str
    connector: int  # 0: the charger has reported no connector yet
    connector_id: int | None
    pending: bool
    connected: bool
    status: str
    error_code: str = "NoError"
    power_kw: float | None = None
    energy_kwh: float | None = None
    soc: float | None = None
    transaction_id: int | None = None
    meter_start_wh: float = 0.0
    started_at: datetime | None = None
    booking_code: str | None = None
    booking: Booking | None = None  # of the running session, for its quote
    last_message_at: datetime | None = None
    site: int = 0  # the station's id

    @property
    def key(self) -> tuple[str, int]:
        return (self.ident, self.connector)

    @property
    def label(self) -> str:
        return self.ident if self.connector == 0 else f"{self.ident} #{self.connector}"

    @property
    def shown_status(self) -> str:
        if self.pending:
            return "Pending approval"
        if not self.connected:
            return "Offline"
        return self.status

    @property
    def charging(self) -> bool:
        return self.transaction_id is not None


def _session_fields(tx: ChargingTransaction | None) -> dict[str, Any]:
    if tx is None:
        return {
            "transaction_id": None,
            "meter_start_wh": 0.0,
            "started_at": None,
            "booking_code": None,
            "booking": None,
            "power_kw": None,
            "energy_kwh": None,
            "soc": None,
        }
    energy = session_energy_kwh(tx.last_energy_wh, tx.meter_start_wh)
    return {
        "transaction_id": tx.id,
        "meter_start_wh": float(tx.meter_start_wh),
        "started_at": tx.started_at,
        "booking_code": tx.booking.code if tx.booking_id else tx.id_tag,
        "booking": tx.booking if tx.booking_id else None,
        "power_kw": tx.last_power_kw,
        "energy_kwh": None if energy is None else float(energy),
        "soc": tx.last_soc,
    }


def load_rows(sites: Sites) -> list[ChargerRow]:
    """The chargers (not removed) and connectors of a site, or of several, from the store."""
    listing = chargers_of(sites)
    rows: list[ChargerRow] = []
    for cp in listing.charge_points:
        base = {
            "ident": cp.ident,
            "site": cp.station_id,
            "pending": cp.state == ChargePointState.PENDING.value,
            "connected": bool(cp.connected),
            "last_message_at": cp.last_seen_at,
        }
        own = listing.connectors.get(cp.id, [])
        if not own:
            rows.append(ChargerRow(connector=0, connector_id=None, status="Unavailable", **base))
        for c in own:
            rows.append(
                ChargerRow(
                    connector=c.number,
                    connector_id=c.id,
                    status=c.status,
                    error_code=c.error_code,
                    **base,
                    **_session_fields(listing.running.get((cp.id, c.number))),
                )
            )
    return rows


def _status_text(row: ChargerRow) -> str:
    status = row.shown_status
    if row.error_code not in ("NoError", "") and row.connected:
        status = f"{status} ({row.error_code})"
    return status


def _status_tooltip(row: ChargerRow) -> str | None:
    return f"{row.shown_status} (error code {row.error_code})" if row.error_code else None


def _when_charging(text: Callable[[ChargerRow], str]) -> Callable[[ChargerRow], str]:
    return lambda row: text(row) if row.charging else DASH


class ChargersModel(RecordTableModel[ChargerRow]):
    FLUSH_MS = 250

    def __init__(
        self,
        station: Station,
        clock: Callable[[], datetime] = utcnow,
        parent: QObject | None = None,
        sites: SiteLookup | None = None,
    ) -> None:
        self.station = station
        self.sites = sites or SiteLookup(station)
        self.clock = clock
        self.calendar = station_calendar(station)
        self.tz = self.calendar.tz
        super().__init__(self._columns(), parent)
        self._index: dict[tuple[str, int], int] = {}
        self._dirty: set[int] = set()
        self._stale: set[int] = set()
        self._reload_wanted = False
        self._flush = QTimer(self, interval=self.FLUSH_MS, singleShot=True)
        self._flush.timeout.connect(self._flush_changes)
        self._elapsed_column = self.column("Elapsed")
        self._tick = QTimer(self, interval=1000)
        self._tick.timeout.connect(self._tick_elapsed)
        self._tick.start()
        self.reload()

    def _columns(self) -> list[Column[ChargerRow]]:
        def elapsed_seconds(row: ChargerRow) -> float:
            elapsed = self._elapsed(row)
            return elapsed.total_seconds() if elapsed else 0.0

        columns = [
            Column("Charger", lambda r: r.ident),
            Column(
                "Connector",
                lambda r: DASH if r.connector == 0 else str(r.connector),
                lambda r: r.connector,
            ),
            Column("Connection", lambda r: "Online" if r.connected else "Offline"),
            Column(
                "Status",
                _status_text,
                colour=lambda r: status_colours(r.shown_status)[1],
                background=lambda r: status_colours(r.shown_status)[0],
                tooltip=_status_tooltip,
            ),
            Column(
                "kW",
                _when_charging(lambda r: fmt_kw(r.power_kw)),
                lambda r: r.power_kw or 0.0,
                True,
            ),
            Column(
                "Session kWh",
                _when_charging(lambda r: fmt_kwh(r.energy_kwh)),
                lambda r: r.energy_kwh or 0.0,
                True,
            ),
            Column(
                "SoC",
                _when_charging(lambda r: fmt_percent(r.soc)),
                lambda r: r.soc if r.soc is not None else -1.0,
                True,
            ),
            Column(
                "Elapsed",
                _when_charging(lambda r: fmt_duration(self._elapsed(r))),
                elapsed_seconds,
                True,
            ),
            Column("Booking", lambda r: r.booking_code or DASH),
            Column("Booked vs delivered", _when_charging(self._against_quote)),
            Column(
                "Last message",
                lambda r: fmt_clock(r.last_message_at, self.sites.tz(r.site)),
                lambda r: r.last_message_at.timestamp() if r.last_message_at else 0.0,
            ),
        ]
        if self.sites.several:
            columns.append(Column("Site", lambda r: self.sites.name(r.site)))
        return columns

    def _against_quote(self, row: ChargerRow) -> str:
        """Booked kWh and quote beside what is delivered and costs so far."""
        booking = row.booking
        if booking is None or row.started_at is None:
            return "no booking"
        energy = Decimal(str(row.energy_kwh or 0)).quantize(Decimal("0.001"))
        site = row.site
        so_far = session_price(
            self.sites.tariff(site), self.sites.calendar(site), booking, energy, row.started_at,
            self.clock(),
        ).total  # fmt: skip
        return running_beside_quote(
            booking.energy_kwh, booking.price_total, energy, so_far, self.sites.currency(site)
        )

    def _elapsed(self, row: ChargerRow) -> timedelta | None:
        return None if row.started_at is None else self.clock() - row.started_at

    # Access
    def rows(self) -> list[ChargerRow]:
        return self.records()

    def row_for(self, ident: str, connector: int) -> ChargerRow | None:
        i = self._index.get((ident, connector))
        return None if i is None else self._records[i]

    def row_index(self, ident: str, connector: int) -> int | None:
        return self._index.get((ident, connector))

    # Updates
    def reload(self) -> None:
        """Re-read everything; rows stay in place when the set of connectors is unchanged."""
        self._reload_wanted = False
        rows = load_rows(self.sites.ids)
        if [r.key for r in rows] == [r.key for r in self._records]:
            previous = self._records
            self._records = [
                replace(new, last_message_at=new.last_message_at or old.last_message_at)
                for new, old in zip(rows, previous, strict=True)
            ]
            if rows:
                self.dataChanged.emit(
                    self.index(0, 0), self.index(len(rows) - 1, len(self.columns) - 1)
                )
            return
        self._index = {r.key: i for i, r in enumerate(rows)}
        self.set_records(rows)

    def _update(self, i: int, **changes: Any) -> None:
        self._records[i] = replace(self._records[i], **changes)
        self._dirty.add(i)

    def _rows_of(self, ident: str) -> list[int]:
        return [i for i, r in enumerate(self._records) if r.ident == ident]

    def apply(self, event: CsmsEvent) -> None:
        """Fold one central-system event into the rows."""
        ident = event.charge_point
        if ident is None:
            return
        rows = self._rows_of(ident)
        if not rows or event.kind is EventKind.CHARGER_PENDING:
            self._reload_wanted = True
            self._schedule()
            return
        for i in rows:
            self._update(i, last_message_at=event.timestamp)
        kind, data = event.kind, event.data
        if kind in (EventKind.CHARGER_CONNECTED, EventKind.CHARGER_BOOTED):
            for i in rows:
                self._update(i, connected=True)
        elif kind is EventKind.CHARGER_DISCONNECTED:
            for i in rows:
                self._update(i, connected=False, power_kw=None)
        elif event.connector:
            i = self._index.get((ident, event.connector))
            if i is None:
                self._reload_wanted = True  # a connector seen for the first time
            elif kind is EventKind.METER_VALUES:
                self._apply_meter(i, data)
            elif kind is EventKind.STATUS_CHANGED and data.get("status"):
                self._update(
                    i,
                    connected=True,
                    status=str(data["status"]),
                    error_code=str(data.get("error_code") or "NoError"),
                )
            elif kind is EventKind.CHARGING_STARTED:
                self._update(
                    i,
                    transaction_id=data.get("transaction_id"),
                    booking_code=data.get("booking_code"),
                    started_at=event.timestamp,
                    power_kw=None,
                    energy_kwh=None,
                    soc=None,
                )
                self._stale.add(i)
            elif kind is EventKind.SESSION_STOPPED:
                self._update(i, **_session_fields(None))
                self._stale.add(i)
            elif kind in SESSION_KINDS:
                self._stale.add(i)
        self._schedule()

    def touch(self, event: CsmsEvent) -> None:
        """An OCPP message: only the charger's last-message time changes."""
        if event.charge_point is None:
            return
        for i in self._rows_of(event.charge_point):
            self._update(i, last_message_at=event.timestamp)
        self._schedule()

    def _apply_meter(self, i: int, data: dict[str, Any]) -> None:
        row = self._records[i]
        changes: dict[str, Any] = {"connected": True}
        if data.get("power_kw") is not None:
            changes["power_kw"] = float(data["power_kw"])
        if data.get("soc") is not None:
            changes["soc"] = float(data["soc"])
        if data.get("energy_wh") is not None:  # the meter register, not the session's energy
            energy = session_energy_kwh(float(data["energy_wh"]), row.meter_start_wh)
            changes["energy_kwh"] = None if energy is None else float(energy)
        tx_id = data.get("transaction_id")
        if tx_id is not None and tx_id != row.transaction_id:
            self._stale.add(i)
        self._update(i, **changes)

    def _refresh_from_store(self, i: int) -> None:
        row = self._records[i]
        connector = Connector.get_or_none(Connector.id == row.connector_id)
        if connector is None:
            self._reload_wanted = True
            return
        tx = (
            ChargingTransaction.select(ChargingTransaction, Booking)
            .join(Booking, join_type=peewee.JOIN.LEFT_OUTER)
            .where(
                (ChargingTransaction.charge_point == connector.charge_point_id)
                & (ChargingTransaction.connector_number == connector.number)
                & (ChargingTransaction.state == TransactionState.ACTIVE.value)
            )
            .order_by(ChargingTransaction.started_at.desc())
            .first()
        )
        fields = _session_fields(tx)
        if tx is not None and tx.id == row.transaction_id:
            # keep the live readings, which are newer than the stored ones
            for name in ("power_kw", "energy_kwh", "soc"):
                if getattr(row, name) is not None:
                    fields.pop(name)
        self._update(i, **fields)

    def _schedule(self) -> None:
        if not self._flush.isActive():
            self._flush.start()

    def _flush_changes(self) -> None:
        if self._reload_wanted:
            self._dirty.clear()
            self._stale.clear()
            self.reload()
            return
        for i in sorted(self._stale):
            self._refresh_from_store(i)
        self._stale.clear()
        if not self._dirty:
            return
        first, last = min(self._dirty), max(self._dirty)
        self._dirty.clear()
        self.dataChanged.emit(self.index(first, 0), self.index(last, len(self.columns) - 1))

    def _tick_elapsed(self) -> None:
        charging = [i for i, r in enumerate(self._records) if r.charging]
        if charging:
            self.dataChanged.emit(
                self.index(min(charging), self._elapsed_column),
                self.index(max(charging), self._elapsed_column),
            )
