"""The paper's charging flow on the store: Authorize, StartTransaction, MeterValues and
StopTransaction checked against the bookings, recorded, and priced by Eq. (8).

Synchronous and quick (indexed look-ups), called from the protocol handlers on the loop.
Meter values are checked (domain.plausibility) and handed back as rows for the store
writer, which the handler awaits before it answers; starts and stops run on the writer's
thread (`BatchWriter.run`), so the loop never waits on a lock, and are answered once stored.
A refused start is recorded as refused, never as an open transaction.

Booking window (the idTag is a booking ID): Accepted on the booked charge point from
`grace` before the start until the end, while the booking is confirmed, checked in or
charging. A confirmed booking with no transaction by `grace` after its start is a
no-show (see `no_shows`), and its ID is Expired from then on, as after the end.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import peewee

from evcms_desktop.csms.protocol import parse_timestamp
from evcms_desktop.csms.writer import BatchWriter
from evcms_desktop.domain.booking_codes import ID_TAG_MAX, normalize_code
from evcms_desktop.domain.plausibility import (
    MAX_CLOCK_AHEAD,
    ImplausibleReading,
    check_meter,
    check_reading,
    check_register,
    check_register_step,
    clock_skew,
    is_register,
    session_energy,
    trusted_time,
)
from evcms_desktop.domain.readings import (
    ENERGY_REGISTER,
    WH_PER_KWH,
    Quantity,
    decode_sample,
    session_energy_kwh,
)
from evcms_desktop.domain.tariff import (
    PriceBreakdown,
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
from evcms_desktop.store.sessions import session_price
from evcms_desktop.store.stations import (
    connector_power_of,
    continues_past_booked_energy,
    station_calendar,
    station_tariff,
)

log = logging.getLogger(__name__)

NOT_OPEN_CACHE = 10_000


class AuthStatus:
    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"
    CONCURRENT_TX = "ConcurrentTx"


@dataclass
class OpenTransaction:
    """What the central system keeps in memory about a running transaction."""

    id: int
    charge_point: str
    station_id: int  # the site whose once-only work (auto-stop) watches it
    connector: int
    id_tag: str
    meter_start_wh: int
    booking_id: int | None
    booking_code: str | None
    booking_end: datetime | None
    target_kwh: Decimal | None
    energy_wh: float | None = None
    soc: float | None = None
    power_kw: float | None = None
    fully_charged: bool = False
    booked_energy_reached: bool = False
    stop_requested_at: datetime | None = None
    # What bounds the register's steps: the connector's power, and when the register
    # (meterStart, then the last plausible reading) was read.
    max_power_kw: float | None = None
    register_at: datetime | None = None
    # The earliest the server vouches the transaction began (see plausibility.vouched_start);
    # None: its claimed start (read back from the store after a restart).
    vouched_from: datetime | None = None

    @property
    def delivered_kwh(self) -> Decimal:
        return session_energy_kwh(self.energy_wh, self.meter_start_wh) or Decimal(0)

    @property
    def target_met(self) -> bool:
        return self.target_kwh is not None and self.delivered_kwh >= self.target_kwh


@dataclass(frozen=True)
class AuthOutcome:
    status: str
    booking: Booking | None = None
    expiry: datetime | None = None


@dataclass(frozen=True)
class StartOutcome:
    transaction_id: int
    status: str
    booking: Booking | None
    retried: bool
    expiry: datetime | None = None
    refusal: str | None = None  # why a refused start was refused


@dataclass(frozen=True)
class MeterSummary:
    transaction: OpenTransaction | None
    transaction_id: int | None
    samples: int
    energy_wh: float | None = None
    power_kw: float | None = None
    soc: float | None = None
    rows: list[tuple[type[MeterValue], dict[str, Any]]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # why samples were not stored
    clock_skew: timedelta | None = None


@dataclass(frozen=True)
class StopOutcome:
    transaction: ChargingTransaction | None
    status: str | None  # the idTagInfo status, when the charger sent an idTag
    price: PriceBreakdown | None = None
    already_stopped: bool = False
    currency: str = "GBP"
    booking_code: str | None = None
    review: str | None = None  # why the session was not billed from the raw meter numbers
    quoted: Decimal | None = None  # the booking's price
    booked_kwh: Decimal | None = None
    billed_kwh: Decimal = Decimal(0)
    explanation: str = ""  # why the bill is not the quote


@dataclass
class SessionLedger:
    db: peewee.SqliteDatabase
    writer: BatchWriter
    grace: timedelta | None = None  # None: each station's authorize_grace_minutes
    open: dict[int, OpenTransaction] = field(default_factory=dict)
    _by_charger: dict[str, dict[int, OpenTransaction]] = field(default_factory=dict)
    # (charger, transactionId) -> the stored transaction it names, or None: meter values
    # for a refused or finished transaction need no query per message.
    _not_open: dict[tuple[int, int], int | None] = field(default_factory=dict)

    # -- bookings ---------------------------------------------------------------------

    def grace_for(self, station: Station) -> timedelta:
        if self.grace is not None:
            return self.grace
        return timedelta(minutes=station.authorize_grace_minutes)

    def find_booking(self, id_tag: str, reservation_id: int | None = None) -> Booking | None:
        """The booking of an idTag; a reservationId (our booking id) counts only with the
        booking's own ID as idTag."""
        if len(id_tag) > ID_TAG_MAX:
            return None
        code = normalize_code(id_tag)
        if reservation_id is not None:
            booking = Booking.get_or_none(Booking.id == reservation_id)
            if booking is not None and booking.code == code:
                return booking
        return Booking.get_or_none(Booking.code == code)

    def booking_status(
        self, booking: Booking | None, cp: ChargePoint, now: datetime, connector: int | None
    ) -> str:
        return self.judge_booking(booking, cp, now, connector)[0]

    def judge_booking(
        self, booking: Booking | None, cp: ChargePoint, now: datetime, connector: int | None
    ) -> tuple[str, str]:
        """The idTagInfo status of a booking's ID here and now, and why (for a refusal)."""
        if booking is None:
            return AuthStatus.INVALID, "no such booking"
        booked = Connector.get_by_id(booking.connector_id)
        if booked.charge_point_id != cp.id:
            return AuthStatus.INVALID, f"booking {booking.code} is for another charger"
        if connector is not None and connector != booked.number:
            return AuthStatus.INVALID, f"booking {booking.code} is for connector {booked.number}"
        state = BookingState(booking.state)
        grace = self.grace_for(booking.station)
        if state is BookingState.NO_SHOW and now <= booking.start + grace:
            # A start the charger made in time while offline, arriving after the no-show
            # was called: the no-show was wrong, and the start is judged as confirmed.
            state = BookingState.CONFIRMED
        if state is BookingState.CANCELLED:
            return AuthStatus.BLOCKED, f"booking {booking.code} was cancelled"
        if state is BookingState.COMPLETED:
            return AuthStatus.EXPIRED, f"booking {booking.code} was already used"
        if state is BookingState.NO_SHOW:
            return AuthStatus.EXPIRED, f"booking {booking.code} was a no-show"
        if now < booking.start - grace:
            # 1.6 has no "not yet valid"
            return AuthStatus.INVALID, f"before booking {booking.code}'s window"
        if now >= booking.end:
            return AuthStatus.EXPIRED, f"after booking {booking.code}'s window"
        if state is BookingState.CONFIRMED and now > booking.start + grace:
            return AuthStatus.EXPIRED, f"booking {booking.code} started too late (a no-show)"
        busy = AuthStatus.CONCURRENT_TX, f"booking {booking.code} is charging already"
        if any(t.booking_id == booking.id for t in self.open_for(cp.ident)):
            return busy
        running = ChargingTransaction.select().where(
            (ChargingTransaction.booking == booking.id)
            & (ChargingTransaction.state == TransactionState.ACTIVE)
        )
        if running.exists():  # stored, and not yet tracked on the loop
            return busy
        return AuthStatus.ACCEPTED, ""

    def authorize(self, cp: ChargePoint, id_tag: str, now: datetime) -> AuthOutcome:
        booking = self.find_booking(id_tag)
        status = self.booking_status(booking, cp, now, None)
        expiry = booking.end if booking is not None and status == AuthStatus.ACCEPTED else None
        return AuthOutcome(status, booking, expiry)

    # -- transactions -----------------------------------------------------------------

    def load_open(self) -> None:
        """Read the transactions left open (by a restart or a dropped charger)."""
        self.open.clear()
        self._by_charger.clear()
        query = (
            ChargingTransaction.select(ChargingTransaction, ChargePoint)
            .join(ChargePoint)
            .where(ChargingTransaction.state == TransactionState.ACTIVE)
        )
        for tx in query:
            self._track(self._open_entry(tx, tx.charge_point, self._power_of(tx)))

    def sync_open(self, _now: datetime | None = None) -> None:
        """Take in the transactions other nodes opened, and drop those they closed, so that
        the node doing the once-only work (auto-stop) sees every open transaction."""
        active = {
            tx.id: tx
            for tx in ChargingTransaction.select(ChargingTransaction, ChargePoint)
            .join(ChargePoint)
            .where(ChargingTransaction.state == TransactionState.ACTIVE)
        }
        for tx_id in set(self.open) - set(active):
            self._untrack(tx_id)
        for tx_id in set(active) - set(self.open):
            tx = active[tx_id]
            self._track(self._open_entry(tx, tx.charge_point, self._power_of(tx)))

    @staticmethod
    def _power_of(tx: ChargingTransaction) -> float | None:
        return connector_power_of(tx.charge_point_id, tx.connector_number)

    @staticmethod
    def _open_entry(
        tx: ChargingTransaction, cp: ChargePoint, max_power_kw: float | None
    ) -> OpenTransaction:
        booking = tx.booking if tx.booking_id is not None else None
        return OpenTransaction(
            id=tx.id,
            charge_point=cp.ident,
            station_id=cp.station_id,
            connector=tx.connector_number,
            id_tag=tx.id_tag,
            meter_start_wh=tx.meter_start_wh,
            booking_id=tx.booking_id,
            booking_code=booking.code if booking else None,
            booking_end=booking.end if booking else None,
            target_kwh=booking.energy_kwh if booking else None,
            energy_wh=tx.last_energy_wh,
            soc=tx.last_soc,
            power_kw=tx.last_power_kw,
            max_power_kw=max_power_kw,
            register_at=None if tx.last_energy_wh is not None else tx.started_at,
        )

    def _track(self, tx: OpenTransaction) -> None:
        self.open[tx.id] = tx
        self._by_charger.setdefault(tx.charge_point, {})[tx.id] = tx

    def _untrack(self, tx_id: int) -> None:
        tx = self.open.pop(tx_id, None)
        if tx is not None:
            self._by_charger.get(tx.charge_point, {}).pop(tx_id, None)

    def open_for(self, ident: str) -> list[OpenTransaction]:
        return list(self._by_charger.get(ident, {}).values())

    def _stored_transaction(self, cp: ChargePoint, transaction_id: int) -> int | None:
        key = (cp.id, transaction_id)
        if key not in self._not_open:
            if len(self._not_open) >= NOT_OPEN_CACHE:
                self._not_open.clear()
            known = ChargingTransaction.get_or_none(
                (ChargingTransaction.id == transaction_id)
                & (ChargingTransaction.charge_point == cp)
            )
            self._not_open[key] = known.id if known is not None else None
        return self._not_open[key]

    async def start(
        self,
        cp: ChargePoint,
        connector: int,
        id_tag: str,
        meter_start: int,
        timestamp: datetime,
        reservation_id: int | None,
        now: datetime,
        reported: datetime | None = None,
        vouched_from: datetime | None = None,
    ) -> StartOutcome:
        """Judge and record a StartTransaction on the store writer's thread (the loop never
        waits on a lock); StoreUnavailable when it cannot be stored. `reported` is the
        charger's own timestamp when `timestamp` is what the server trusts instead;
        `vouched_from` the earliest the server vouches it began, for the energy cap."""

        def store() -> tuple[StartOutcome, ChargingTransaction | None, float | None]:
            outcome, tx = self._start_in_store(
                cp, connector, id_tag, meter_start, timestamp, reservation_id, now, reported
            )
            return outcome, tx, None if tx is None else self._power_of(tx)

        outcome, tx, max_power_kw = await self.writer.run(store, f"{cp.ident} StartTransaction")
        if tx is not None:
            if outcome.status == AuthStatus.ACCEPTED:
                self._not_open.pop((cp.id, tx.id), None)
                entry = self._open_entry(tx, cp, max_power_kw)
                entry.vouched_from = vouched_from
                self._track(entry)
            else:
                self._not_open[cp.id, tx.id] = tx.id
        return outcome

    def _start_in_store(
        self,
        cp: ChargePoint,
        connector: int,
        id_tag: str,
        meter_start: int,
        timestamp: datetime,
        reservation_id: int | None,
        now: datetime,
        reported: datetime | None = None,
    ) -> tuple[StartOutcome, ChargingTransaction | None]:
        """The store's part of a start: the transaction (new, or the one a retry names);
        the new one comes back for the loop to track."""
        with self.db.atomic():
            same = (
                (ChargingTransaction.charge_point == cp)
                & (ChargingTransaction.connector_number == connector)
                & (ChargingTransaction.id_tag == id_tag)
            )
            existing = ChargingTransaction.get_or_none(
                same & (ChargingTransaction.started_at == timestamp)
            )
            if existing is None and reported is not None and reported > now:
                # A clock ahead of the server's: the first of these was stored at its own
                # receipt time, not at the charger's; a retry still open with the same
                # meterStart, stored too early for that timestamp, is that one.
                existing = (
                    ChargingTransaction.select()
                    .where(
                        same
                        & (ChargingTransaction.meter_start_wh == meter_start)
                        & ChargingTransaction.stopped_at.is_null()
                        & (ChargingTransaction.started_at < reported - MAX_CLOCK_AHEAD)
                    )
                    .order_by(ChargingTransaction.id.desc())
                    .first()
                )
            if existing is not None:
                refused = existing.state == TransactionState.REFUSED or not existing.booking_id
                status = AuthStatus.INVALID if refused else AuthStatus.ACCEPTED
                booking = existing.booking if existing.booking_id else None
                # The same answer as the first (which the charger may have lost).
                expiry = booking.end if booking is not None and not refused else None
                return StartOutcome(existing.id, status, booking, True, expiry), None
            booking = self.find_booking(id_tag, reservation_id)
            # The window is checked at the start's own time: a start the charger queued
            # while offline is judged by when it happened, not by when it arrived.
            status, why = self.judge_booking(booking, cp, timestamp, connector)
            accepted = status == AuthStatus.ACCEPTED
            # The charger may already be delivering: the transaction is recorded either
            # way, a rejected one as refused, and the charger stops it (DeAuthorized).
            tx = ChargingTransaction.create(
                charge_point=cp,
                connector_number=connector,
                booking=booking if accepted else None,
                id_tag=id_tag,
                reservation_id=reservation_id,
                meter_start_wh=meter_start,
                started_at=timestamp,
                state=(TransactionState.ACTIVE if accepted else TransactionState.REFUSED).value,
                refusal=None if accepted else why,
            )
            if accepted and booking is not None:
                booking.state = BookingState.CHARGING.value
                booking.checked_in_at = booking.checked_in_at or now
                booking.save(only=[Booking.state, Booking.checked_in_at])
        expiry = booking.end if accepted and booking is not None else None
        outcome = StartOutcome(
            tx.id, status, booking if accepted else None, False, expiry, None if accepted else why
        )
        return outcome, tx

    def record_meter_values(
        self,
        cp: ChargePoint,
        connector: int,
        transaction_id: int | None,
        meter_values: list[dict[str, Any]],
        now: datetime | None = None,
    ) -> MeterSummary:
        """Check every sampled value and turn the plausible ones into rows for the store
        writer (the caller writes them); summarise energy, power and SoC of the transaction.
        """
        tx = self.open.get(transaction_id) if transaction_id is not None else None
        linked: int | None = None
        if tx is not None and tx.charge_point == cp.ident:
            linked = tx.id
        elif transaction_id is not None:
            tx = None
            linked = self._stored_transaction(cp, transaction_id)
            if linked is None:
                log.warning(
                    "%s: meter values for unknown transaction %s stored without one",
                    cp.ident,
                    transaction_id,
                )
        energy = power = soc = None
        register = tx.energy_wh if tx is not None else None
        rows: list[tuple[type[MeterValue], dict[str, Any]]] = []
        rejected: list[str] = []
        skew: timedelta | None = None
        samples = 0
        for item in meter_values:
            at = parse_timestamp(item["timestamp"])
            if now is not None:
                # A reading stamped in the future counts (for the power check, and as
                # stored) from when it arrived.
                skew = skew or clock_skew(at, now)
                at = trusted_time(at, now)
            for sample in item["sampled_value"]:
                measurand = sample.get("measurand", ENERGY_REGISTER)
                unit = sample.get("unit")
                phase = sample.get("phase")
                try:
                    reading = check_reading(measurand, unit, sample["value"])
                    if measurand == ENERGY_REGISTER and phase is None and tx is not None:
                        check_register(register, reading.base)
                        # From the last plausible reading, else from meterStart (when
                        # that is a register at all: a bogus one bounds nothing).
                        base = tx.meter_start_wh if register is None else register
                        if (
                            tx.max_power_kw is not None
                            and tx.register_at is not None
                            and is_register(base)
                        ):
                            check_register_step(
                                base, reading.base, tx.max_power_kw, at - tx.register_at
                            )
                        register = reading.base
                        tx.register_at = at
                except ImplausibleReading as exc:
                    rejected.append(str(exc))
                    continue
                rows.append(
                    (
                        MeterValue,
                        {
                            "charge_point": cp.id,
                            "connector_number": connector,
                            "transaction": linked,
                            "timestamp": at,
                            "measurand": measurand,
                            "value": sample["value"],
                            "unit": unit,
                            "phase": phase,
                            "context": sample.get("context"),
                            "location": sample.get("location"),
                        },
                    )
                )
                samples += 1
                decoded = decode_sample(measurand, sample["value"], unit, phase)
                if decoded is None:
                    continue
                quantity, number = decoded
                if quantity is Quantity.ENERGY_WH:
                    energy = number
                elif quantity is Quantity.POWER_KW:
                    power = number
                else:
                    soc = number
        if tx is not None and linked is not None:
            tx.energy_wh = tx.energy_wh if energy is None else energy
            tx.power_kw = tx.power_kw if power is None else power
            tx.soc = tx.soc if soc is None else soc
            if (energy, power, soc) != (None, None, None):
                self.writer.update_transaction(tx.id, energy, power, soc)
        return MeterSummary(tx, linked, samples, energy, power, soc, rows, rejected, skew)

    def transaction_readings(
        self,
        cp: ChargePoint,
        transaction_id: int,
        transaction_data: list[dict[str, Any]],
        now: datetime | None = None,
    ) -> MeterSummary:
        """The transactionData of a StopTransaction, checked, as rows for the writer."""
        tx = ChargingTransaction.get_or_none(
            (ChargingTransaction.id == transaction_id) & (ChargingTransaction.charge_point == cp)
        )
        if tx is not None and tx.state == TransactionState.FINISHED:
            return MeterSummary(None, None, 0)  # a stop resent: its data is stored already
        connector = tx.connector_number if tx is not None else 0
        return self.record_meter_values(
            cp, connector, tx.id if tx is not None else None, transaction_data, now
        )

    @staticmethod
    def stop_unknown(id_tag: str | None) -> StopOutcome:
        """A StopTransaction whose transactionId cannot be ours."""
        return StopOutcome(None, None if id_tag is None else AuthStatus.INVALID)

    async def stop_stored(
        self,
        cp: ChargePoint,
        transaction_id: int,
        meter_stop: int,
        timestamp: datetime,
        reason: str | None,
        id_tag: str | None,
        clock_note: str | None = None,
        received: datetime | None = None,
    ) -> StopOutcome:
        """`stop` on the store writer's thread (the loop never waits on a lock);
        StoreUnavailable when it cannot be stored. `clock_note` says why the stop's time
        is the server's, not the charger's (the session is then reviewed); `received`
        when the server received the stop, the latest it vouches the session ran."""
        outcome = await self.writer.run(
            lambda: self._stop_in_store(
                cp, transaction_id, meter_stop, timestamp, reason, id_tag, clock_note, received
            ),
            f"{cp.ident} StopTransaction",
        )
        self._untrack_stopped(outcome)
        return outcome

    def stop(
        self,
        cp: ChargePoint,
        transaction_id: int,
        meter_stop: int,
        timestamp: datetime,
        reason: str | None,
        id_tag: str | None,
    ) -> StopOutcome:
        """Close and price a transaction on the calling thread's connection."""
        outcome = self._stop_in_store(cp, transaction_id, meter_stop, timestamp, reason, id_tag)
        self._untrack_stopped(outcome)
        return outcome

    def _untrack_stopped(self, outcome: StopOutcome) -> None:
        tx = outcome.transaction
        if tx is not None and tx.state == TransactionState.FINISHED:
            self._untrack(tx.id)

    def _stop_in_store(
        self,
        cp: ChargePoint,
        transaction_id: int,
        meter_stop: int,
        timestamp: datetime,
        reason: str | None,
        id_tag: str | None,
        clock_note: str | None = None,
        received: datetime | None = None,
    ) -> StopOutcome:
        tx = ChargingTransaction.get_or_none(
            (ChargingTransaction.id == transaction_id) & (ChargingTransaction.charge_point == cp)
        )
        if tx is None:
            log.warning("%s: StopTransaction for unknown transaction %s", cp.ident, transaction_id)
            return self.stop_unknown(id_tag)
        tag_status = None if id_tag is None else self._stop_tag_status(tx, id_tag)
        if tx.state == TransactionState.FINISHED:
            # A stop resent after a reconnect.
            return StopOutcome(tx, tag_status, already_stopped=True)
        try:
            stop_wh: int | None = check_meter(meter_stop, "meterStop")
        except ImplausibleReading:
            stop_wh = None
        if tx.state == TransactionState.REFUSED:
            # The charger ends what it was refused: the end is recorded, nothing is billed.
            tx.meter_stop_wh, tx.stopped_at, tx.stop_reason = stop_wh, timestamp, reason
            tx.save(
                only=[
                    ChargingTransaction.meter_stop_wh,
                    ChargingTransaction.stopped_at,
                    ChargingTransaction.stop_reason,
                ]
            )
            return StopOutcome(tx, tag_status, already_stopped=True)
        booking = tx.booking if tx.booking_id is not None else None
        station = booking.station if booking else cp.station
        open_entry = self.open.get(tx.id)
        last_register = open_entry.energy_wh if open_entry is not None else tx.last_energy_wh
        # What the server saw: from the start it vouches for to the stop's receipt.
        began = open_entry.vouched_from if open_entry is not None else None
        ended = timestamp if received is None else min(timestamp, received)
        billed = session_energy(
            tx.meter_start_wh,
            meter_stop,
            tx.started_at,
            timestamp,
            last_register,
            max_power_kw=self._power_of(tx),
            vouched=ended - (began or tx.started_at),
        )
        review = "; ".join(why for why in (clock_note, billed.review) if why) or None
        if review is not None:
            log.warning("%s: transaction %s flagged for review: %s", cp.ident, tx.id, review)
        energy_kwh = (Decimal(repr(billed.energy_wh)) / WH_PER_KWH).quantize(Decimal("0.001"))
        billed_kwh, explanation = _billed(energy_kwh, booking)
        price = session_price(
            station_tariff(station),
            station_calendar(station),
            booking,
            billed_kwh,
            tx.started_at,
            timestamp,
        )
        with self.db.atomic():
            tx.meter_stop_wh = stop_wh
            tx.stopped_at = timestamp
            tx.stop_reason = reason
            tx.state = TransactionState.FINISHED.value
            tx.energy_kwh = energy_kwh
            tx.price_energy = price.energy
            tx.price_time_of_use = price.time_of_use
            tx.price_service = price.service
            tx.price_total = price.total
            tx.review = review
            # The register as far as it is plausible: a meterStop not billed from is not.
            tx.last_energy_wh = (
                float(stop_wh) if stop_wh is not None and billed.review is None else last_register
            )
            # Only what the stop decides: the summary columns come from the batch writer.
            tx.save(
                only=[
                    ChargingTransaction.meter_stop_wh,
                    ChargingTransaction.stopped_at,
                    ChargingTransaction.stop_reason,
                    ChargingTransaction.state,
                    ChargingTransaction.energy_kwh,
                    ChargingTransaction.price_energy,
                    ChargingTransaction.price_time_of_use,
                    ChargingTransaction.price_service,
                    ChargingTransaction.price_total,
                    ChargingTransaction.review,
                    ChargingTransaction.last_energy_wh,
                ]
            )
            if booking is not None and booking.state == BookingState.CHARGING:
                booking.state = BookingState.COMPLETED.value
                booking.closed_at = timestamp
                booking.save(only=[Booking.state, Booking.closed_at])
        return StopOutcome(
            tx,
            tag_status,
            price,
            currency=station.currency,
            booking_code=booking.code if booking else None,
            review=review,
            quoted=booking.price_total if booking else None,
            booked_kwh=booking.energy_kwh if booking else None,
            billed_kwh=billed_kwh,
            explanation=explanation,
        )

    @staticmethod
    def _stop_tag_status(tx: ChargingTransaction, id_tag: str) -> str:
        """The idTagInfo of a stop: what the start answered for the same tag (Accepted only
        for a booking's own ID), Invalid for any other tag."""
        same_tag = len(id_tag) <= ID_TAG_MAX and normalize_code(id_tag) == normalize_code(tx.id_tag)
        if same_tag and tx.booking_id is not None:
            return AuthStatus.ACCEPTED
        return AuthStatus.INVALID


def _billed(delivered: Decimal, booking: Booking | None) -> tuple[Decimal, str]:
    """The energy billed and, when the bill is not the quote, why.

    The plan is the contract: energy past the booked amount (the meter's last interval
    before the stop) is not billed, unless the station lets sessions continue past it.
    """
    if booking is None:
        return delivered, ""
    booked = booking.energy_kwh
    if delivered > booked:
        if continues_past_booked_energy(booking.id):
            return delivered, f"{delivered - booked:.3f} kWh past the booked {booked} kWh billed"
        return booked, ""
    if delivered < booked:
        return delivered, f"{booked - delivered:.3f} kWh of the booked {booked} kWh not delivered"
    return delivered, ""
