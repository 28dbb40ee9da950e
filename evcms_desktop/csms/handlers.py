"""The central system's side of one charger connection: the 1.6 messages a charger sends."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any, Protocol, TypeVar

from ocpp.exceptions import (
    InternalError,
    OCPPError,
    PropertyConstraintViolationError,
    SecurityError,
    TypeConstraintViolationError,
)
from ocpp.messages import Call, CallError, CallResult
from ocpp.routing import after, on
from ocpp.v16 import call_result
from ocpp.v16.enums import Action

from evcms_desktop.csms.commands import CommandService
from evcms_desktop.csms.config import Clock, CsmsConfig
from evcms_desktop.csms.deviations import DeviationRecorder
from evcms_desktop.csms.events import CsmsEvent, EventKind, Publish, publish_session_stopped
from evcms_desktop.csms.plan_keeper import PlanKeeper
from evcms_desktop.csms.protocol import (
    OcppEndpoint,
    TimestampError,
    format_timestamp,
    parse_timestamp,
)
from evcms_desktop.csms.sessions import AuthStatus, MeterSummary, OpenTransaction, SessionLedger
from evcms_desktop.csms.tolerance import (
    NO_SUBPROTOCOL,
    Deviation,
    read_call,
    strict_for,
    timezone_for,
)
from evcms_desktop.csms.writer import StoreUnavailable
from evcms_desktop.domain.plausibility import (
    EARLIEST_PLAUSIBLE,
    LIVE_DELAY,
    ImplausibleReading,
    check_meter,
    clock_skew,
    skew_text,
    trusted_time,
    vouched_start,
)
from evcms_desktop.domain.text import clean_json, clean_text, int64_or_none, log_safe
from evcms_desktop.store.models import (
    ChargePoint,
    ChargePointState,
    Connector,
)
from evcms_desktop.store.stations import connector_numbers, record_boot

log = logging.getLogger(__name__)

T = TypeVar("T")

# What a Pending charger may send until an operator approves it.
_PENDING_ALLOWED = {"BootNotification", "Heartbeat", "StatusNotification"}
_FULL_STATES = {"SuspendedEV", "Finishing"}
# Seconds: how often a busy charger's last-seen time is written. At 5 s a charger sending
# every 10 s wrote it with every message (5,000 of them: 500 updates a second).
SEEN_INTERVAL = 30.0


def _timestamp(text: str) -> datetime:
    try:
        return parse_timestamp(text)
    except TimestampError as exc:
        raise TypeConstraintViolationError(description=str(exc)) from exc


class RateRefusal(SecurityError):
    """A CALL refused for the charger's message rate."""


class TransferReports(Protocol):
    """Where a charger's firmware and diagnostics statuses go (csms.file_transfers)."""

    def firmware_status(self, ident: str, status: str) -> None: ...
    def diagnostics_status(self, ident: str, status: str) -> None: ...


@dataclass(frozen=True)
class SessionContext:
    """What a charger's session may use of the central system, and nothing more."""

    config: CsmsConfig
    ledger: SessionLedger
    clock: Clock
    publish: Publish  # stamped with `clock`, notifications logged
    emit: Callable[[CsmsEvent], None]  # the bus itself, for the frequent events
    commands: CommandService
    deviations: DeviationRecorder
    plan_keeper: PlanKeeper
    transfers: TransferReports
    # Called once when a charger keeps breaking the message rate: disconnect it (1008)
    # and refuse it for a cool-down.
    on_flood: Callable[[ChargerSession], None] = lambda _session: None


class ReportThrottle:
    """A charger's refusals and reports: the first few of each interval are logged and
    published one by one, the rest counted and published as one event when the interval
    ends (or the charger goes), so a misbehaving charger cannot fill the log or the store."""

    def __init__(self, session: ChargerSession, context: SessionContext) -> None:
        self._session = session
        self._context = context
        self._started = -float("inf")
        self._sent = 0
        self._held: Counter[str] = Counter()
        self._timer: asyncio.TimerHandle | None = None

    def report(
        self,
        kind: EventKind,
        message: str,
        data: dict[str, Any],
        label: str,
        *,
        detail: str = "",
        always: bool = False,
    ) -> None:
        """Publish (and log, with `detail`) one report, unless this interval had enough."""
        config = self._context.config
        now = time.monotonic()
        if now - self._started >= config.report_interval_seconds:
            self._release()
            self._started, self._sent = now, 0
        if self._sent >= config.reports_per_interval and not always:
            self._held[label] += 1
            if self._timer is None:
                delay = self._started + config.report_interval_seconds - now
                self._timer = asyncio.get_running_loop().call_later(delay, self._release)
            return
        self._sent += 1
        ident = self._session.id
        text = message if message.startswith(ident) else f"{ident}: {message}"
        log.warning("%s%s", log_safe(text, 500), detail)
        self._context.publish(kind, message, ident, data=data)

    def close(self) -> None:
        self._release()

    def _release(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._held:
            return
        held, self._held = self._held, Counter()
        ident = self._session.id
        counts = ", ".join(f"{label} x{count}" for label, count in held.most_common())
        message = (
            f"{ident}: {held.total()} more refusals and reports in"
            f" {self._context.config.report_interval_seconds:g} s, not listed one by one"
            f" ({counts})"
        )
        log.warning("%s", message)
        self._context.publish(EventKind.PROTOCOL_ERROR, message, ident, data={"counts": dict(held)})


class ChargerSession(OcppEndpoint):
    """One connected charger. Handlers never await calls to the charger (see `call`)."""

    def __init__(self, context: SessionContext, cp: ChargePoint, connection: Any) -> None:
        super().__init__(
            cp.ident,
            connection,
            response_timeout=context.config.response_timeout,
            max_frame=context.config.max_frame_bytes,
        )
        self.context = context
        self.cp = cp
        self._tokens = float(context.config.rate_burst)
        self._refilled = time.monotonic()
        self._refused_in_a_row = 0  # messages refused for the rate since it slowed down
        self._last_refused = -float("inf")  # monotonic time of the last refusal
        self.flooding = False  # disconnected for the rate: what it still sends is dropped
        self.reports = ReportThrottle(self, context)
        self.connector_status: dict[int, str] = {}
        self.booted = False  # accepted at a BootNotification on this connection
        self._to_limit: OpenTransaction | None = None  # a booked start, for its TxProfile
        self._reached: OpenTransaction | None = None  # at its booked energy just now
        self.strict = strict_for(cp, context.config.strict)
        self.tz: tzinfo = timezone_for(cp)
        if connection.subprotocol is None:
            context.deviations.record(
                cp.ident,
                [Deviation(NO_SUBPROTOCOL, "the WebSocket handshake offered no subprotocol")],
                context.clock(),
            )
        self._skew_warned = False
        self._seen_written: datetime | None = None  # the last last-seen time written
        self._connectors = connector_numbers(cp.id)
        # When this connection opened, and when the charger was last heard before it: what
        # it reports between the two happened offline (see plausibility.vouched_start).
        self.connected_at = context.clock()
        # A last-seen time as late as this connection's may be its own (the registry's
        # write races the load): then when it went is not known.
        seen = cp.last_seen_at
        self.offline_since = (
            seen if seen is not None and seen < self.connected_at - LIVE_DELAY else None
        )

    # -- hooks ---------------------------------------------------------------------

    def on_message(self, direction: str, action: str, payload: dict[str, Any]) -> None:
        if direction == "in":
            self._heard()
        self.context.emit(
            CsmsEvent(
                EventKind.OCPP_MESSAGE,
                f"{direction} {action}",
                charge_point=self.id,
                data={"direction": direction, "action": action, "payload": payload},
            )
        )

    def on_protocol_error(self, error: OCPPError, unique_id: str, raw: str | None) -> None:
        data: dict[str, Any] = {"code": error.code, "unique_id": unique_id}
        if raw is not None:
            data["frame"] = raw[:500]
        detail = "" if raw is None else f" (frame: {log_safe(raw, 200)})"
        self.reports.report(
            EventKind.PROTOCOL_ERROR,
            f"{error.code}: {error.description}",
            data,
            error.code,
            detail=detail,
        )

    async def route_message(self, raw_msg: str | bytes) -> None:
        if not self.flooding:
            await super().route_message(raw_msg)

    def admit_malformed(self) -> bool:
        return self._take_token()

    def on_unsolicited(self, message: CallResult | CallError, raw: str | bytes) -> None:
        """Answers to no call draw on the rate limit like CALLs and are reported in counts."""
        if not self._take_token():
            return
        text = raw if isinstance(raw, str) else repr(raw[:200])
        self.reports.report(
            EventKind.PROTOCOL_ERROR,
            "answer to no pending call",
            {"code": "Unsolicited", "unique_id": message.unique_id, "frame": text[:500]},
            "answer to no pending call",
            detail=f" (frame: {log_safe(text, 200)})",
        )

    async def refuse(self, msg: Call, error: OCPPError) -> None:
        if not isinstance(error, RateRefusal):
            await super().refuse(msg, error)
            return
        # A flooder's frame: counted and answered, with no message events of its own.
        self.reports.report(
            EventKind.PROTOCOL_ERROR,
            f"{error.code}: {error.description}",
            {"code": error.code, "unique_id": msg.unique_id},
            error.code,
        )
        await self._send(CallError(msg.unique_id, error.code, error.description, {}).to_json())

    def _take_token(self) -> bool:
        """The per-charger token bucket that every CALL and malformed frame draws on."""
        now = time.monotonic()
        config = self.context.config
        self._tokens = min(
            float(config.rate_burst),
            self._tokens + (now - self._refilled) * config.rate_per_second,
        )
        self._refilled = now
        if self._tokens >= 1:
            self._tokens -= 1
            # A token that came back while the charger kept sending does not end its
            # refusals in a row: only a pause of one token's time since the last does.
            if now - self._last_refused >= 1 / max(config.rate_per_second, 1e-9):
                self._refused_in_a_row = 0
            return True
        self._last_refused = now
        if not self._refused_in_a_row:
            log.warning(
                "%s: above %s messages/s; refusing until it slows down",
                self.id,
                config.rate_per_second,
            )
        self._refused_in_a_row += 1
        if self._refused_in_a_row >= max(config.rate_burst, 1) and not self.flooding:
            self.flooding = True
            self.reports.report(
                EventKind.PROTOCOL_ERROR,
                f"{self.id} kept sending above {config.rate_per_second} messages/s:"
                f" disconnected and refused for {config.rate_cooldown_seconds:g} s",
                {"code": "RateLimit", "cooldown_seconds": config.rate_cooldown_seconds},
                "RateLimit",
                always=True,
            )
            self.context.on_flood(self)
        return False

    def cancel_background(self) -> None:
        super().cancel_background()
        self.reports.close()

    def admit(self, message: Call) -> None:
        if not self._take_token():
            raise RateRefusal(
                description=f"Message rate above {self.context.config.rate_per_second}/s:"
                " try again later"
            )
        if self.cp.state == ChargePointState.PENDING and message.action not in _PENDING_ALLOWED:
            raise SecurityError(description="This charger awaits approval by an operator")

    def read_call(self, message: Call) -> None:
        deviations = read_call(message, strict=self.strict, tz=self.tz)
        if deviations:
            self.context.deviations.record(self.id, deviations, self.context.clock())

    # -- messages --------------------------------------------------------------------

    @on(Action.boot_notification)
    async def on_boot_notification(
        self, charge_point_vendor: str, charge_point_model: str, **kwargs: Any
    ) -> call_result.BootNotification:
        now = self.context.clock()

        def record() -> ChargePoint:
            return record_boot(
                self.cp.id,
                charge_point_vendor,
                charge_point_model,
                kwargs.get("charge_point_serial_number") or kwargs.get("charge_box_serial_number"),
                kwargs.get("firmware_version"),
                now,
            )

        self.cp = await self._stored(record, "BootNotification")
        # Its strings as one line: no control character reaches the log or the event.
        shown = f"{log_safe(charge_point_vendor, 40)} {log_safe(charge_point_model, 40)}"
        if self.cp.state == ChargePointState.PENDING:
            self.context.publish(
                EventKind.CHARGER_PENDING,
                f"{self.id} ({shown}) awaits approval",
                self.id,
            )
            status, interval = "Pending", self.context.config.pending_retry_seconds
        else:
            self.context.publish(
                EventKind.CHARGER_BOOTED,
                f"{self.id} booted ({shown})",
                self.id,
                data={"vendor": charge_point_vendor, "model": charge_point_model},
            )
            status, interval = "Accepted", self.context.config.heartbeat_seconds
            self.booted = True
        return call_result.BootNotification(
            current_time=format_timestamp(now), interval=interval, status=status
        )

    @after(Action.boot_notification)
    async def after_boot_notification(self, **_: Any) -> None:
        if self.cp.state != ChargePointState.APPROVED or not self.context.config.probe_features:
            return
        result = await self.context.commands.get_configuration(
            self.id, ["SupportedFeatureProfiles"]
        )
        if not result.ok:
            return
        for entry in result.payload.get("configurationKey", []):
            if entry.get("key") == "SupportedFeatureProfiles":
                supports = "Reservation" in (entry.get("value") or "")
                query = ChargePoint.update(supports_reservation=supports).where(
                    ChargePoint.id == self.cp.id
                )
                await self._stored(query.execute, "SupportedFeatureProfiles")
                self.cp.supports_reservation = supports

    def _heard(self) -> None:
        """Every message from the charger moves its last-seen time (written at most once
        per SEEN_INTERVAL; the writer keeps only the latest)."""
        now = self.context.clock()
        last = self._seen_written
        if last is None or abs((now - last).total_seconds()) >= SEEN_INTERVAL:
            self._seen_written = now
            self.context.ledger.writer.seen(self.cp.id, now)

    @on(Action.heartbeat)
    def on_heartbeat(self, **_: Any) -> call_result.Heartbeat:
        now = self.context.clock()
        return call_result.Heartbeat(current_time=format_timestamp(now))

    @on(Action.status_notification)
    async def on_status_notification(
        self, connector_id: int, error_code: str, status: str, **kwargs: Any
    ) -> call_result.StatusNotification:
        at = _timestamp(kwargs["timestamp"]) if "timestamp" in kwargs else self.context.clock()
        if not self.known_connector(connector_id):
            # Answered (the charger would only retry) but never made a bookable connector.
            self.reports.report(
                EventKind.PROTOCOL_ERROR,
                f"{self.id}: StatusNotification for connector {log_safe(connector_id, 24)},"
                " which it does not have",
                {"connector_id": str(connector_id)[:24], "status": status},
                "UnknownConnector",
            )
            return call_result.StatusNotification()
        if connector_id > 0:
            query = Connector.update(status=status, error_code=error_code, status_at=at).where(
                (Connector.charge_point == self.cp.id) & (Connector.number == connector_id)
            )
            await self._stored(query.execute, "StatusNotification")
        previous = self.connector_status.get(connector_id)
        self.connector_status[connector_id] = status
        self.context.publish(
            EventKind.STATUS_CHANGED,
            f"{self.id} #{connector_id}: {status}"
            + ("" if error_code == "NoError" else f" ({error_code})"),
            self.id,
            connector_id,
            data={
                "status": status,
                "error_code": error_code,
                "info": clean_json(kwargs.get("info")),
            },
        )
        if status == "Preparing" and previous != "Preparing":
            self.context.publish(
                EventKind.EV_CONNECTED,
                f"EV connected at {self.id} #{connector_id}",
                self.id,
                connector_id,
            )
        if status in _FULL_STATES:
            for tx in self.context.ledger.open_for(self.id):
                if tx.connector == connector_id and tx.target_met:
                    self._fully_charged(tx, f"the charger reports {status}")
        return call_result.StatusNotification()

    @on(Action.authorize)
    def on_authorize(self, id_tag: str, **_: Any) -> call_result.Authorize:
        outcome = self.context.ledger.authorize(self.cp, id_tag, self.context.clock())
        if outcome.status != AuthStatus.ACCEPTED:
            log.info("%s: Authorize %s: %s", self.id, log_safe(id_tag, 20), outcome.status)
        info: dict[str, Any] = {"status": outcome.status}
        if outcome.expiry is not None:
            info["expiry_date"] = format_timestamp(outcome.expiry)
        return call_result.Authorize(id_tag_info=info)

    @on(Action.start_transaction)
    async def on_start_transaction(
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **kwargs: Any
    ) -> call_result.StartTransaction:
        now = self.context.clock()
        reported = _timestamp(timestamp)
        self._note_skew(clock_skew(reported, now))
        started = trusted_time(reported, now)
        if not self.known_connector(connector_id) or connector_id == 0:
            raise PropertyConstraintViolationError(
                description=f"connectorId {str(connector_id)[:24]} is not one of this charger's"
            )
        try:
            check_meter(meter_start, "meterStart")
        except ImplausibleReading as exc:
            # Recorded (the charger may be delivering), never billed from: see ledger.stop.
            log.warning("%s: %s", self.id, exc)
        try:
            outcome = await self.context.ledger.start(
                self.cp,
                connector_id,
                id_tag,
                meter_start if int64_or_none(meter_start) is not None else -1,
                started,
                int64_or_none(kwargs.get("reservation_id")),
                now,
                reported,
                vouched_start(started, now, self.connected_at, self.offline_since),
            )
        except StoreUnavailable as exc:
            raise InternalError(description=f"StartTransaction not stored: {exc}"[:255]) from exc
        info: dict[str, Any] = {"status": outcome.status}
        if outcome.expiry is not None:
            info["expiry_date"] = format_timestamp(outcome.expiry)
        if outcome.retried:
            log.info("%s: retried StartTransaction -> %s", self.id, outcome.transaction_id)
        elif outcome.status == AuthStatus.ACCEPTED:
            code = outcome.booking.code if outcome.booking else None
            self.context.publish(
                EventKind.CHARGING_STARTED,
                f"Charging started at {self.id} #{connector_id} (booking {code})",
                self.id,
                connector_id,
                data={"transaction_id": outcome.transaction_id, "booking_code": code},
            )
        else:
            why = outcome.refusal or outcome.status
            self.reports.report(
                EventKind.START_REFUSED,
                f"start {outcome.transaction_id} with idTag {log_safe(id_tag, 20)} on"
                f" #{connector_id} refused ({outcome.status}): {why}",
                {"transaction_id": outcome.transaction_id, "reason": why},
                "start refused",
            )
        if outcome.status == AuthStatus.ACCEPTED and outcome.booking is not None:
            self._to_limit = self.context.ledger.open.get(outcome.transaction_id)
        return call_result.StartTransaction(transaction_id=outcome.transaction_id, id_tag_info=info)

    @after(Action.start_transaction)
    async def after_start_transaction(self, **_: Any) -> None:
        tx, self._to_limit = self._to_limit, None
        if tx is not None:
            await self.context.plan_keeper.limit_at_start(self.id, tx)

    @on(Action.meter_values)
    async def on_meter_values(
        self, connector_id: int, meter_value: list[dict[str, Any]], **kwargs: Any
    ) -> call_result.MeterValues:
        if not self.known_connector(connector_id):
            raise PropertyConstraintViolationError(
                description=f"connectorId {str(connector_id)[:24]} is not one of this charger's"
            )
        for item in meter_value:
            _timestamp(item["timestamp"])
        summary = self.context.ledger.record_meter_values(
            self.cp,
            connector_id,
            int64_or_none(kwargs.get("transaction_id")),
            meter_value,
            self.context.clock(),
        )
        await self._store_readings(summary, "MeterValues")
        self.context.emit(
            CsmsEvent(
                EventKind.METER_VALUES,
                f"{self.id} #{connector_id}: {summary.samples} samples",
                charge_point=self.id,
                connector=connector_id,
                data={
                    "transaction_id": summary.transaction_id,
                    "energy_wh": summary.energy_wh,
                    "power_kw": summary.power_kw,
                    "soc": summary.soc,
                },
            )
        )
        tx = summary.transaction
        if tx is not None and summary.soc is not None and summary.soc >= 100:
            self._fully_charged(tx, "the battery is at 100 %")
        if tx is not None and tx.target_met and not tx.booked_energy_reached:
            tx.booked_energy_reached = True
            self._reached = tx
        return call_result.MeterValues()

    @after(Action.meter_values)
    def after_meter_values(self, **_: Any) -> None:
        """A task only when the booked energy was just reached, not one per message."""
        tx, self._reached = self._reached, None
        if tx is not None:
            self.spawn(self.context.plan_keeper.energy_reached(self.id, tx))

    @on(Action.stop_transaction)
    async def on_stop_transaction(
        self, meter_stop: int, timestamp: str, transaction_id: int, **kwargs: Any
    ) -> call_result.StopTransaction:
        now = self.context.clock()
        reported = _timestamp(timestamp)
        for item in kwargs.get("transaction_data") or []:
            _timestamp(item["timestamp"])
        skew = clock_skew(reported, now)
        self._note_skew(skew)
        stopped = trusted_time(reported, now)
        clock_note = None
        if stopped != reported:
            clock_note = (
                f"the stop's timestamp {reported:%Y-%m-%d %H:%M:%S} is {skew} after the server"
                f" received it; the receipt time {now:%Y-%m-%d %H:%M:%S} is used"
            )
        elif reported < EARLIEST_PLAUSIBLE:
            # No session ends before the charger could exist: the end the server saw.
            stopped = now
            clock_note = (
                f"the stop's timestamp {reported:%Y-%m-%d %H:%M:%S} is before"
                f" {EARLIEST_PLAUSIBLE:%Y}; the receipt time {now:%Y-%m-%d %H:%M:%S} is used"
            )
        elif reported - now > LIVE_DELAY:
            clock_note = (
                f"the stop's timestamp {reported:%Y-%m-%d %H:%M:%S} is"
                f" {skew_text(reported - now)} the server's receipt"
                f" {now:%Y-%m-%d %H:%M:%S}"
            )
        known_id = int64_or_none(transaction_id)
        if kwargs.get("transaction_data") and known_id is not None:
            summary = self.context.ledger.transaction_readings(
                self.cp, known_id, kwargs["transaction_data"], now
            )
            await self._store_readings(summary, "StopTransaction")
        id_tag = kwargs.get("id_tag")
        if known_id is None:
            outcome = self.context.ledger.stop_unknown(id_tag)
        else:
            try:
                outcome = await self.context.ledger.stop_stored(
                    self.cp,
                    known_id,
                    meter_stop,
                    stopped,
                    kwargs.get("reason"),
                    id_tag,
                    clock_note,
                    now,
                )
            except StoreUnavailable as exc:
                raise InternalError(description=f"StopTransaction not stored: {exc}"[:255]) from exc
        tx = outcome.transaction
        if tx is None:
            self.context.publish(
                EventKind.PROTOCOL_ERROR,
                f"{self.id}: StopTransaction for unknown transaction {str(transaction_id)[:24]}",
                self.id,
                data={"transaction_id": known_id, "meter_stop": int64_or_none(meter_stop)},
            )
        else:
            publish_session_stopped(self.context.publish, self.id, outcome)
        if outcome.status is None:
            return call_result.StopTransaction()
        return call_result.StopTransaction(id_tag_info={"status": outcome.status})

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, **kwargs: Any) -> call_result.DataTransfer:
        vendor = clean_text(vendor_id)
        self.reports.report(
            EventKind.CHARGER_REPORT,
            f"{self.id}: DataTransfer from vendor {log_safe(vendor, 255)} (not handled)",
            clean_json({"vendor_id": vendor, **kwargs}),
            "DataTransfer",
        )
        return call_result.DataTransfer(status="UnknownVendorId")

    @on(Action.diagnostics_status_notification)
    def on_diagnostics_status(self, status: str) -> call_result.DiagnosticsStatusNotification:
        self.context.transfers.diagnostics_status(self.id, status)
        return call_result.DiagnosticsStatusNotification()

    @on(Action.firmware_status_notification)
    def on_firmware_status(self, status: str) -> call_result.FirmwareStatusNotification:
        self.context.transfers.firmware_status(self.id, status)
        return call_result.FirmwareStatusNotification()

    # -- helpers ---------------------------------------------------------------------

    def known_connector(self, connector_id: int) -> bool:
        """0 (the charger itself) or one of the connectors it was registered with."""
        return connector_id == 0 or connector_id in self._connectors

    async def _stored(self, job: Callable[[], T], action: str) -> T:
        """Run store work on the writer's thread; InternalError when it cannot be stored
        (the charger sends the message again)."""
        try:
            return await self.context.ledger.writer.run(job, f"{self.id} {action}")
        except StoreUnavailable as exc:
            raise InternalError(description=f"{action} not stored: {exc}"[:255]) from exc

    async def _store_readings(self, summary: MeterSummary, action: str) -> None:
        """Write the checked samples; answer InternalError if the store cannot (the charger
        keeps the message and sends it again). Refused samples become one event."""
        if summary.rejected:
            self.reports.report(
                EventKind.READING_REFUSED,
                f"{self.id}: {len(summary.rejected)} implausible reading(s) not stored"
                f" ({log_safe(summary.rejected[0], 120)})",
                {"reasons": [clean_text(r, 200) for r in summary.rejected[:10]]},
                "ImplausibleReading",
            )
        self._note_skew(summary.clock_skew)
        try:
            await self.context.ledger.writer.write(summary.rows, f"{self.id} {action}")
        except StoreUnavailable as exc:
            raise InternalError(description=f"{action} not stored: {exc}"[:255]) from exc

    def _note_skew(self, skew: timedelta | None) -> None:
        """One clock_skew event per connection, from whichever message shows it first."""
        if skew is None or self._skew_warned:
            return
        self._skew_warned = True
        self.context.publish(
            EventKind.CLOCK_SKEW,
            f"{self.id}: its clock is {skew_text(skew)} the server's",
            self.id,
            data={"skew_seconds": skew.total_seconds()},
        )

    def _fully_charged(self, tx: OpenTransaction, why: str) -> None:
        if tx.fully_charged:
            return
        tx.fully_charged = True
        self.context.publish(
            EventKind.FULLY_CHARGED,
            f"Fully charged at {self.id} #{tx.connector} ({why})",
            self.id,
            tx.connector,
            data={"transaction_id": tx.id, "booking_code": tx.booking_code, "soc": tx.soc},
        )
