"""A simulated OCPP 1.6J charge point: boots, authorizes, charges a battery model, meters,
stops, and answers every command of the central system.

Messages that cannot be sent while offline (StopTransaction, MeterValues of a running
transaction) are queued and sent, in order and with their own timestamps, after the
next accepted BootNotification, as a real charger does.

The charger's clock (`ChargeBox.now`) is simulated: charging simulated faster than real
time (`meter(seconds=...)`, `time_scale`) moves it ahead of the real clock, so that the
energy between two readings never exceeds the power times the time their timestamps
say, as a central system checks.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import logging
import ssl
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ocpp.routing import after, on
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.client import ClientConnection, connect

from evcms_desktop.csms.protocol import (
    SUBPROTOCOL,
    OcppEndpoint,
    format_timestamp,
    parse_timestamp,
)
from evcms_desktop.simulator.profiles import limit_kw

COMPOSITE_STEP_SECONDS = 60
FULL_POWER_KW = 22.0  # a connector without a profile limit
PHASE_VOLTS = 230.0
MAX_DOWNLOAD = 64 * 1024 * 1024  # a firmware file larger than this is not taken

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


# What a writable configuration key takes, as a real charger checks it before it answers
# Accepted: an integer in range (seconds), or a boolean.
INTEGER_KEYS = {
    "HeartbeatInterval": (1, 86_400),
    # 0 would mean no samples at all, and an hour between samples is already more than a
    # session's chart can use.
    "MeterValueSampleInterval": (1, 3_600),
}
BOOLEAN_KEYS = {"AuthorizeRemoteTxRequests"}


def valid_setting(key: str, value: str) -> bool:
    """Whether `value` is one `key` can hold: an integer in the key's range or a boolean."""
    if key in BOOLEAN_KEYS:
        return value in ("true", "false")
    bounds = INTEGER_KEYS.get(key)
    if bounds is None:
        return True
    if not (value.isascii() and value.isdigit() and len(value) <= 6):
        return False
    return bounds[0] <= int(value) <= bounds[1]


FEATURES = "Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger"


@dataclass
class Battery:
    """An EV battery: full power up to `taper_from` % SoC, then tapering linearly."""

    capacity_kwh: float = 60.0
    soc: float = 20.0
    max_power_kw: float = 22.0
    taper_from: float = 80.0
    min_power_kw: float = 1.0

    def power_kw(self) -> float:
        if self.soc >= 100:
            return 0.0
        if self.soc < self.taper_from:
            return self.max_power_kw
        share = (100 - self.soc) / (100 - self.taper_from)
        return max(self.max_power_kw * share, self.min_power_kw)

    def charge(self, seconds: float, power_kw: float | None = None) -> float:
        """Charge for `seconds` (at most at `power_kw`); returns the energy taken in kWh."""
        room = (100 - self.soc) / 100 * self.capacity_kwh
        power = self.power_kw() if power_kw is None else min(power_kw, self.power_kw())
        energy = min(power * seconds / 3600, room)
        self.soc = min(100.0, self.soc + energy / self.capacity_kwh * 100)
        return energy


@dataclass
class SimTransaction:
    id: int
    connector: int
    id_tag: str
    battery: Battery
    started_at: datetime | None = None
    power_kw: float = 0.0
    metered_at: datetime | None = None  # simulated time of the last reading
    metering: asyncio.Task[None] | None = None


@dataclass
class ConnectorState:
    meter_wh: float = 0.0
    status: str = "Available"
    reservation: int | None = None
    transaction: SimTransaction | None = None
    profiles: list[dict[str, Any]] = field(default_factory=list)


class ChargeBox(OcppEndpoint):
    def __init__(
        self,
        ident: str,
        url: str,
        *,
        password: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        connectors: int = 2,
        clock: Clock = _utcnow,
        meter_interval: float = 10.0,
        time_scale: float = 1.0,
        battery: Callable[[], Battery] = Battery,
        response_timeout: float = 30.0,
        on_log: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(ident, None, response_timeout=response_timeout)
        self.url = url.rstrip("/") + "/" + ident
        self.password = password
        self.ssl_context = ssl_context
        self.clock = clock
        self._ahead_to: datetime | None = None  # simulated charging ran the clock to here
        self.meter_interval = meter_interval
        self._interval_changed = asyncio.Event()  # wakes the meter loops (ChangeConfiguration)
        self.time_scale = time_scale  # simulated seconds of charging per real second
        self.new_battery = battery
        self.on_log = on_log
        self.connectors = {n: ConnectorState() for n in range(1, connectors + 1)}
        self.local_list: dict[str, Any] = {}  # idTag -> idTagInfo (SendLocalList)
        self.local_list_version = 0
        self._provisional = 0  # ids of transactions started offline count down from -1
        self._offline_starts: list[int] = []  # their provisional ids, as queued
        self.configuration: dict[str, tuple[str, bool]] = {
            "HeartbeatInterval": ("300", False),
            "MeterValueSampleInterval": (str(int(meter_interval)), False),
            "AuthorizeRemoteTxRequests": ("true", False),
            "NumberOfConnectors": (str(connectors), True),
            "SupportedFeatureProfiles": (FEATURES, True),
        }
        self.queue: list[Any] = []
        self.boot_status: str | None = None
        self._reader: asyncio.Task[None] | None = None
        self.transactions: dict[int, SimTransaction] = {}
        self.firmware_version = "1.0"
        self._freed: list[int] = []  # connectors a CancelReservation freed, to announce
        self.firmware: bytes | None = None  # the last firmware downloaded
        self.diagnostics_size = 4096  # bytes of diagnostics it uploads (0: it has none)
        self.uploaded_diagnostics: bytes | None = None
        self.transfer_timeout = 30.0
        self.recent_log: collections.deque[str] = collections.deque(maxlen=100)

    def now(self) -> datetime:
        """The charger's clock: `clock`, unless simulated charging has run it ahead."""
        real = self.clock()
        return real if self._ahead_to is None or self._ahead_to <= real else self._ahead_to

    # -- connection ------------------------------------------------------------------

    def say(self, text: str) -> None:
        log.debug("%s: %s", self.id, text)
        self.recent_log.append(text)
        if self.on_log is not None:
            self.on_log(text)

    @property
    def connected(self) -> bool:
        return self._reader is not None and not self._reader.done()

    async def connect(self) -> ClientConnection:
        headers = {}
        if self.password is not None:
            token = base64.b64encode(f"{self.id}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        ws = await connect(
            self.url,
            subprotocols=[SUBPROTOCOL],
            additional_headers=headers,
            ssl=self.ssl_context,
            compression=None,
            ping_interval=None,
            open_timeout=30,
        )
        self._connection = ws
        self._reader = asyncio.get_running_loop().create_task(self._read(ws))
        self.say(f"connected to {self.url}")
        return ws

    async def _read(self, ws: ClientConnection) -> None:
        with contextlib.suppress(Exception):
            await self.start()
        self.fail_pending(ConnectionError("connection closed"))
        self.say(f"disconnected (code {ws.close_code})")

    async def wait_disconnected(self) -> None:
        """Return when the current connection has closed (at once when there is none)."""
        if self._reader is not None:
            await asyncio.shield(self._reader)

    async def disconnect(self) -> None:
        """Close the connection; transactions keep running (and metering is queued)."""
        if self._connection is not None:
            await self._connection.close()
        if self._reader is not None:
            await self._reader
            self._reader = None

    async def close(self) -> None:
        """Stop metering and disconnect (the end of a simulator, not a dropped link)."""
        for tx in self.transactions.values():
            if tx.metering is not None:
                tx.metering.cancel()
        self.cancel_background()
        await self.disconnect()

    async def send(self, payload: Any) -> Any:
        """Send a CALL now, or queue it when offline (only what OCPP says a charger keeps)."""
        if not self.connected or self.boot_status != "Accepted":
            if isinstance(payload, call.StopTransaction | call.MeterValues):
                self.queue.append(payload)
                self.say(f"offline: queued {type(payload).__name__}")
                return None
            raise ConnectionError(f"{self.id} is not connected")
        return await self.call(payload)

    # -- charger to central system ---------------------------------------------------

    async def boot(self, vendor: str = "EVCMS", model: str = "SimBox") -> str:
        answer = await self.call(
            call.BootNotification(
                charge_point_vendor=vendor,
                charge_point_model=model,
                charge_point_serial_number=f"SIM-{self.id}",
                firmware_version=self.firmware_version,
            )
        )
        self.boot_status = answer.status
        self.say(f"BootNotification: {answer.status}")
        self._take_boot_interval(answer.interval)
        if answer.status == "Accepted":
            await self.flush_queue()
        return answer.status

    def _take_boot_interval(self, interval: Any) -> None:
        """An accepted boot's interval becomes the heartbeat interval when it is one
        (0 leaves it to the charger); anything else keeps the old one."""
        if self.boot_status != "Accepted" or interval == 0:
            return
        text = str(interval) if type(interval) is int else repr(interval)
        if valid_setting("HeartbeatInterval", text):
            self.configuration["HeartbeatInterval"] = (text, False)
        else:
            self.say(f"BootNotification interval {text} ignored: not 1 to 86400 seconds")

    async def flush_queue(self) -> None:
        while self.queue:
            payload = self.queue.pop(0)
            answer = await self.call(payload)
            if isinstance(payload, call.StartTransaction):
                self._renumber(self._offline_starts.pop(0), answer.transaction_id)
            self.say(f"sent queued {type(payload).__name__}")

    async def heartbeat(self) -> str:
        return (await self.call(call.Heartbeat())).current_time

    async def status(self, connector: int, status: str, error_code: str = "NoError") -> None:
        if connector:
            self.connectors[connector].status = status
        await self.call(
            call.StatusNotification(
                connector_id=connector,
                error_code=error_code,
                status=status,
                timestamp=format_timestamp(self.now()),
            )
        )

    async def authorize(self, id_tag: str) -> str:
        answer = await self.call(call.Authorize(id_tag=id_tag))
        status = answer.id_tag_info["status"]
        self.say(f"Authorize {id_tag}: {status}")
        return status

    async def start_transaction(
        self,
        connector: int,
        id_tag: str,
        reservation_id: int | None = None,
        timestamp: datetime | None = None,
    ) -> tuple[int, str]:
        state = self.connectors[connector]
        started = timestamp or self.now()
        payload = call.StartTransaction(
            connector_id=connector,
            id_tag=id_tag,
            meter_start=int(state.meter_wh),
            timestamp=format_timestamp(started),
            reservation_id=reservation_id,
        )
        if not self.connected:
            return self._start_offline(payload, state, started)
        answer = await self.call(payload)
        status = answer.id_tag_info["status"]
        self.say(f"StartTransaction {id_tag} on #{connector}: {answer.transaction_id} {status}")
        tx = SimTransaction(
            answer.transaction_id, connector, id_tag, self.new_battery(), started_at=started
        )
        self.transactions[tx.id] = tx
        state.transaction = tx
        state.reservation = None
        return tx.id, status

    def _start_offline(
        self, payload: call.StartTransaction, state: ConnectorState, started: datetime
    ) -> tuple[int, str]:
        """Start from the local authorization list while offline: the transaction runs
        under a provisional id, and its StartTransaction waits in the queue."""
        entry = self.local_list.get(payload.id_tag) or {}
        expiry = entry.get("expiry_date")
        valid = entry.get("status") == "Accepted" and (
            expiry is None or parse_timestamp(expiry) > started
        )
        if not valid:
            self.say(f"offline: {payload.id_tag} is not on the local list")
            return 0, "Invalid"
        self._provisional -= 1
        tx = SimTransaction(
            self._provisional, payload.connector_id, payload.id_tag, self.new_battery(), started
        )
        self.transactions[tx.id] = tx
        state.transaction = tx
        state.reservation = None
        self.queue.append(payload)
        self._offline_starts.append(tx.id)
        self.say(f"offline: started {payload.id_tag} from the local list ({tx.id})")
        return tx.id, "Accepted"

    def _renumber(self, provisional: int, transaction_id: int) -> None:
        """The central system's id for a transaction started offline, everywhere."""
        tx = self.transactions.pop(provisional, None)
        if tx is not None:
            tx.id = transaction_id
            self.transactions[transaction_id] = tx
        for queued in self.queue:
            if getattr(queued, "transaction_id", None) == provisional:
                queued.transaction_id = transaction_id

    def _samples(self, tx: SimTransaction, context: str, at: datetime) -> list[dict[str, Any]]:
        meter = self.connectors[tx.connector].meter_wh
        return [
            {
                "timestamp": format_timestamp(at),
                "sampledValue": [
                    {
                        "value": str(int(meter)),
                        "context": context,
                        "measurand": "Energy.Active.Import.Register",
                        "unit": "Wh",
                    },
                    {
                        "value": f"{tx.power_kw * 1000:.0f}",
                        "context": context,
                        "measurand": "Power.Active.Import",
                        "unit": "W",
                    },
                    {
                        "value": f"{tx.battery.soc:.1f}",
                        "context": context,
                        "measurand": "SoC",
                        "unit": "Percent",
                        "location": "EV",
                    },
                ],
            }
        ]

    def power_limit_kw(self, tx: SimTransaction) -> float | None:
        """What the connector's charging profiles allow the transaction now."""
        return limit_kw(self.connectors[tx.connector].profiles, self.now(), tx.id, tx.started_at)

    def advance(self, tx: SimTransaction, seconds: float) -> None:
        """Charge the transaction's battery for `seconds` of simulated time, within the
        limit its charging profiles set at the start of the interval."""
        limit = self.power_limit_kw(tx)
        tx.power_kw = tx.battery.power_kw() if limit is None else min(limit, tx.battery.power_kw())
        self.connectors[tx.connector].meter_wh += tx.battery.charge(seconds, tx.power_kw) * 1000

    async def meter(self, transaction_id: int, seconds: float | None = None) -> None:
        """Charge for one interval (`seconds` of simulated time; the meter interval times
        the time scale by default) and send the sample (queued while offline). The sample
        is stamped at least `seconds` after the transaction's last one."""
        tx = self.transactions[transaction_id]
        span = self.meter_interval * self.time_scale if seconds is None else seconds
        previous = tx.metered_at or tx.started_at or self.now()
        self.advance(tx, span)
        tx.metered_at = max(self.now(), previous + timedelta(seconds=span))
        self._ahead_to = max(self._ahead_to or tx.metered_at, tx.metered_at)
        await self.send(
            call.MeterValues(
                connector_id=tx.connector,
                transaction_id=tx.id,
                meter_value=self._samples(tx, "Sample.Periodic", tx.metered_at),
            )
        )

    def start_metering(self, transaction_id: int) -> None:
        tx = self.transactions[transaction_id]
        tx.metering = asyncio.get_running_loop().create_task(self._meter_loop(tx))

    async def _meter_loop(self, tx: SimTransaction) -> None:
        while True:
            await self._one_interval()
            try:
                await self.meter(tx.id)
            except (ConnectionError, TimeoutError) as exc:
                self.say(f"meter values not sent: {exc}")
            if tx.battery.soc >= 100 and self.connectors[tx.connector].status == "Charging":
                with contextlib.suppress(ConnectionError, TimeoutError):
                    await self.status(tx.connector, "SuspendedEV")

    async def _one_interval(self) -> None:
        """Wait one meter interval; when ChangeConfiguration sets a new one meanwhile, the
        wait ends at the new interval after it began (at once when that has passed)."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        while (left := began + self.meter_interval - loop.time()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._interval_changed.wait(), left)

    def set_meter_interval(self, seconds: int) -> None:
        """Sample every `seconds` from now on, in the meter loops already running too."""
        self.meter_interval = seconds
        self.configuration["MeterValueSampleInterval"] = (str(seconds), False)
        changed, self._interval_changed = self._interval_changed, asyncio.Event()
        changed.set()

    async def stop_transaction(
        self, transaction_id: int, reason: str = "Local", timestamp: datetime | None = None
    ) -> str | None:
        """Stop; returns the idTagInfo status, or None when the stop was queued."""
        tx = self.transactions.pop(transaction_id)
        if tx.metering is not None:
            tx.metering.cancel()
        state = self.connectors[tx.connector]
        state.transaction = None
        stopped = timestamp or self.now()
        payload = call.StopTransaction(
            meter_stop=int(state.meter_wh),
            timestamp=format_timestamp(stopped),
            transaction_id=tx.id,
            reason=reason,
            id_tag=tx.id_tag,
            transaction_data=self._samples(tx, "Transaction.End", stopped),
        )
        answer = await self.send(payload)
        self.say(f"StopTransaction {tx.id} ({reason}): {'queued' if answer is None else 'sent'}")
        if answer is None:
            return None
        with contextlib.suppress(ConnectionError, TimeoutError):
            await self.status(tx.connector, "Finishing")
        return (answer.id_tag_info or {}).get("status")

    async def charge(self, id_tag: str, connector: int = 1) -> tuple[int, str]:
        """The driver's part: plug in, authorize, start, and meter in the background."""
        await self.status(connector, "Preparing")
        status = await self.authorize(id_tag)
        if status != "Accepted":
            await self.status(connector, "Available")
            return 0, status
        tx_id, status = await self.start_transaction(
            connector, id_tag, reservation_id=self.connectors[connector].reservation
        )
        if status == "Accepted":
            await self.status(connector, "Charging")
            self.start_metering(tx_id)
        else:
            await self.stop_transaction(tx_id, "DeAuthorized")
        return tx_id, status

    # -- central system to charger ---------------------------------------------------

    def _free_connector(self) -> int | None:
        return next((n for n, c in self.connectors.items() if c.transaction is None), None)

    @on(Action.remote_start_transaction)
    def on_remote_start(
        self, id_tag: str, connector_id: int | None = None, **_: Any
    ) -> call_result.RemoteStartTransaction:
        connector = connector_id or self._free_connector()
        ok = connector in self.connectors and self.connectors[connector].transaction is None
        self.say(f"RemoteStart {id_tag} on #{connector}: {'Accepted' if ok else 'Rejected'}")
        return call_result.RemoteStartTransaction(status="Accepted" if ok else "Rejected")

    @after(Action.remote_start_transaction)
    async def after_remote_start(
        self, id_tag: str, connector_id: int | None = None, **_: Any
    ) -> None:
        connector = connector_id or self._free_connector()
        if connector is None or self.connectors[connector].transaction is not None:
            return
        if self.configuration["AuthorizeRemoteTxRequests"][0] == "true":
            await self.charge(id_tag, connector)
            return
        await self.status(connector, "Preparing")
        tx_id, status = await self.start_transaction(connector, id_tag)
        if status == "Accepted":
            await self.status(connector, "Charging")
            self.start_metering(tx_id)

    @on(Action.remote_stop_transaction)
    def on_remote_stop(self, transaction_id: int) -> call_result.RemoteStopTransaction:
        known = transaction_id in self.transactions
        self.say(f"RemoteStop {transaction_id}: {'Accepted' if known else 'Rejected'}")
        return call_result.RemoteStopTransaction(status="Accepted" if known else "Rejected")

    @after(Action.remote_stop_transaction)
    async def after_remote_stop(self, transaction_id: int) -> None:
        if transaction_id in self.transactions:
            await self.stop_transaction(transaction_id, "Remote")

    @on(Action.reset)
    def on_reset(self, type: str) -> call_result.Reset:
        self.say(f"Reset {type}")
        return call_result.Reset(status="Accepted")

    @after(Action.reset)
    async def after_reset(self, type: str) -> None:
        for tx_id in list(self.transactions):
            await self.stop_transaction(tx_id, "HardReset" if type == "Hard" else "SoftReset")
        await self.boot()

    @on(Action.unlock_connector)
    def on_unlock(self, connector_id: int) -> call_result.UnlockConnector:
        if connector_id not in self.connectors:
            return call_result.UnlockConnector(status="NotSupported")
        return call_result.UnlockConnector(status="Unlocked")

    @after(Action.unlock_connector)
    async def after_unlock(self, connector_id: int) -> None:
        tx = self.connectors[connector_id].transaction if connector_id in self.connectors else None
        if tx is not None:
            await self.stop_transaction(tx.id, "UnlockCommand")

    @on(Action.change_availability)
    def on_change_availability(
        self, connector_id: int, type: str
    ) -> call_result.ChangeAvailability:
        targets = list(self.connectors) if connector_id == 0 else [connector_id]
        if any(n not in self.connectors for n in targets):
            return call_result.ChangeAvailability(status="Rejected")
        if any(self.connectors[n].transaction is not None for n in targets):
            return call_result.ChangeAvailability(status="Scheduled")
        for n in targets:
            self.connectors[n].status = "Available" if type == "Operative" else "Unavailable"
        return call_result.ChangeAvailability(status="Accepted")

    @on(Action.get_configuration)
    def on_get_configuration(self, key: list[str] | None = None) -> call_result.GetConfiguration:
        wanted = key or list(self.configuration)
        known = [
            {"key": k, "readonly": self.configuration[k][1], "value": self.configuration[k][0]}
            for k in wanted
            if k in self.configuration
        ]
        unknown = [k for k in wanted if k not in self.configuration]
        return call_result.GetConfiguration(configuration_key=known, unknown_key=unknown or None)

    @on(Action.change_configuration)
    def on_change_configuration(self, key: str, value: str) -> call_result.ChangeConfiguration:
        if key not in self.configuration:
            return call_result.ChangeConfiguration(status="NotSupported")
        if self.configuration[key][1] or not valid_setting(key, value):
            return call_result.ChangeConfiguration(status="Rejected")
        if key == "MeterValueSampleInterval":
            self.set_meter_interval(int(value))
            self.say(f"meter values every {value} s from now on")
        else:
            self.configuration[key] = (value, False)
        return call_result.ChangeConfiguration(status="Accepted")

    @on(Action.clear_cache)
    def on_clear_cache(self) -> call_result.ClearCache:
        return call_result.ClearCache(status="Accepted")

    @on(Action.trigger_message)
    def on_trigger_message(
        self, requested_message: str, connector_id: int | None = None
    ) -> call_result.TriggerMessage:
        supported = {"BootNotification", "Heartbeat", "StatusNotification", "MeterValues"}
        status = "Accepted" if requested_message in supported else "NotImplemented"
        return call_result.TriggerMessage(status=status)

    @after(Action.trigger_message)
    async def after_trigger_message(
        self, requested_message: str, connector_id: int | None = None
    ) -> None:
        if requested_message == "BootNotification":
            await self.boot()
        elif requested_message == "Heartbeat":
            await self.heartbeat()
        elif requested_message == "StatusNotification":
            for n in [connector_id] if connector_id else list(self.connectors):
                await self.status(n, self.connectors[n].status)
        elif requested_message == "MeterValues":
            for tx in list(self.transactions.values()):
                if connector_id in (None, tx.connector):
                    await self.meter(tx.id, seconds=0)

    @on(Action.reserve_now)
    def on_reserve_now(
        self, connector_id: int, expiry_date: str, id_tag: str, reservation_id: int, **_: Any
    ) -> call_result.ReserveNow:
        state = self.connectors.get(connector_id)
        if state is None:
            return call_result.ReserveNow(status="Rejected")
        if state.transaction is not None:
            return call_result.ReserveNow(status="Occupied")
        state.reservation = reservation_id
        state.status = "Reserved"
        self.say(f"ReserveNow {reservation_id} for {id_tag} on #{connector_id} until {expiry_date}")
        return call_result.ReserveNow(status="Accepted")

    @after(Action.reserve_now)
    async def after_reserve_now(self, connector_id: int, reservation_id: int, **_: Any) -> None:
        state = self.connectors.get(connector_id)
        if state is not None and state.reservation == reservation_id:
            await self.status(connector_id, "Reserved")

    @on(Action.cancel_reservation)
    def on_cancel_reservation(self, reservation_id: int) -> call_result.CancelReservation:
        for number, state in self.connectors.items():
            if state.reservation == reservation_id:
                state.reservation = None
                state.status = "Available"
                self._freed.append(number)
                self.say(f"CancelReservation {reservation_id}")
                return call_result.CancelReservation(status="Accepted")
        return call_result.CancelReservation(status="Rejected")

    @after(Action.cancel_reservation)
    async def after_cancel_reservation(self, reservation_id: int) -> None:
        while self._freed:
            await self.status(self._freed.pop(0), "Available")

    @on(Action.set_charging_profile)
    def on_set_charging_profile(
        self, connector_id: int, cs_charging_profiles: dict[str, Any]
    ) -> call_result.SetChargingProfile:
        targets = list(self.connectors) if connector_id == 0 else [connector_id]
        if any(n not in self.connectors for n in targets):
            return call_result.SetChargingProfile(status="Rejected")
        # OCPP 1.6 (3.13.2, 5.16.3): the new profile replaces one of the same id anywhere on
        # the charger, and one of the same stack level and purpose on its connector(s).
        same_id = cs_charging_profiles.get("charging_profile_id")
        same_slot = (
            cs_charging_profiles.get("stack_level"),
            cs_charging_profiles.get("charging_profile_purpose"),
        )
        for number, state in self.connectors.items():
            state.profiles = [
                p
                for p in state.profiles
                if p.get("charging_profile_id") != same_id
                and not (
                    number in targets
                    and (p.get("stack_level"), p.get("charging_profile_purpose")) == same_slot
                )
            ]
        for n in targets:
            self.connectors[n].profiles.append(cs_charging_profiles)
        return call_result.SetChargingProfile(status="Accepted")

    @on(Action.clear_charging_profile)
    def on_clear_charging_profile(self, **criteria: Any) -> call_result.ClearChargingProfile:
        wanted_id = criteria.get("id")
        removed = 0
        for number, state in self.connectors.items():
            if criteria.get("connector_id") not in (None, 0, number):
                continue
            keep = [
                p
                for p in state.profiles
                if wanted_id is not None and p.get("charging_profile_id") != wanted_id
            ]
            removed += len(state.profiles) - len(keep)
            state.profiles = keep
        return call_result.ClearChargingProfile(status="Accepted" if removed else "Unknown")

    @on(Action.get_composite_schedule)
    def on_get_composite_schedule(
        self, connector_id: int, duration: int, charging_rate_unit: str | None = None
    ) -> call_result.GetCompositeSchedule:
        if connector_id not in self.connectors and connector_id != 0:
            return call_result.GetCompositeSchedule(status="Rejected")
        unit = charging_rate_unit or "W"
        now = self.now()
        state = self.connectors.get(connector_id)
        profiles = state.profiles if state is not None else []
        tx = state.transaction if state is not None else None
        periods: list[dict[str, Any]] = []
        # The profiles' limit sampled each minute, equal neighbours merged.
        for offset in range(0, max(duration, 1), COMPOSITE_STEP_SECONDS):
            at = now + timedelta(seconds=offset)
            kw = limit_kw(profiles, at, tx.id if tx else None, tx.started_at if tx else None)
            kw = FULL_POWER_KW if kw is None else kw
            limit = round(kw * 1000 if unit == "W" else kw * 1000 / (3 * PHASE_VOLTS), 1)
            if not periods or periods[-1]["limit"] != limit:
                periods.append({"startPeriod": offset, "limit": limit})
        return call_result.GetCompositeSchedule(
            status="Accepted",
            connector_id=connector_id,
            schedule_start=format_timestamp(now),
            charging_schedule={
                "duration": duration,
                "chargingRateUnit": unit,
                "chargingSchedulePeriod": periods,
            },
        )

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, **_: Any) -> call_result.DataTransfer:
        return call_result.DataTransfer(status="UnknownVendorId")

    @on(Action.send_local_list)
    def on_send_local_list(
        self,
        list_version: int,
        update_type: str,
        local_authorization_list: list[dict[str, Any]] | None = None,
    ) -> call_result.SendLocalList:
        entries = {e["id_tag"]: e.get("id_tag_info") for e in local_authorization_list or []}
        if update_type == "Full":
            self.local_list = {k: v for k, v in entries.items() if v is not None}
        else:
            if list_version <= self.local_list_version:
                return call_result.SendLocalList(status="VersionMismatch")
            for tag, info in entries.items():
                if info is None:
                    self.local_list.pop(tag, None)
                else:
                    self.local_list[tag] = info
        self.local_list_version = list_version
        return call_result.SendLocalList(status="Accepted")

    @on(Action.get_local_list_version)
    def on_get_local_list_version(self) -> call_result.GetLocalListVersion:
        return call_result.GetLocalListVersion(list_version=self.local_list_version)

    @on(Action.get_diagnostics)
    def on_get_diagnostics(self, location: str, **_: Any) -> call_result.GetDiagnostics:
        if self.diagnostics_size <= 0:
            return call_result.GetDiagnostics()  # 1.6: no fileName, nothing to upload
        return call_result.GetDiagnostics(file_name=f"{self.id}-diagnostics.log")

    @after(Action.get_diagnostics)
    async def after_get_diagnostics(self, location: str, **_: Any) -> None:
        if self.diagnostics_size <= 0:
            return
        url = location if location.endswith("/") else location + "/"
        content = self._diagnostics_content()
        await self._report(call.DiagnosticsStatusNotification(status="Uploading"))
        try:
            await asyncio.to_thread(self._http, "PUT", url + f"{self.id}-diagnostics.log", content)
        except (OSError, ValueError) as exc:  # urllib's errors are OSErrors
            self.say(f"diagnostics upload failed: {exc}")
            await self._report(call.DiagnosticsStatusNotification(status="UploadFailed"))
            return
        self.uploaded_diagnostics = content
        self.say(f"diagnostics uploaded, {len(content)} bytes")
        await self._report(call.DiagnosticsStatusNotification(status="Uploaded"))

    @on(Action.update_firmware)
    def on_update_firmware(
        self, location: str, retrieve_date: str, **_: Any
    ) -> call_result.UpdateFirmware:
        self.say(f"UpdateFirmware from {location} at {retrieve_date}")
        return call_result.UpdateFirmware()

    @after(Action.update_firmware)
    async def after_update_firmware(
        self, location: str, retrieve_date: str, retries: int | None = None, **_: Any
    ) -> None:
        wait = (parse_timestamp(retrieve_date) - self.clock()).total_seconds() / self.time_scale
        await asyncio.sleep(min(max(wait, 0.0), 24 * 3600))
        data: bytes | None = None
        for _attempt in range(max(1, min(retries or 1, 5))):
            await self._report(call.FirmwareStatusNotification(status="Downloading"))
            try:
                data = await asyncio.to_thread(self._http, "GET", location)
                break
            except (OSError, ValueError) as exc:
                self.say(f"firmware download failed: {exc}")
        if data is None:
            await self._report(call.FirmwareStatusNotification(status="DownloadFailed"))
            return
        await self._report(call.FirmwareStatusNotification(status="Downloaded"))
        self.firmware = data
        await self._report(call.FirmwareStatusNotification(status="Installing"))
        name = location.rstrip("/").rsplit("/", 1)[-1]
        self.firmware_version = name[:50] or "downloaded"
        self.say(f"firmware {self.firmware_version} installed, {len(data)} bytes")
        await self._report(call.FirmwareStatusNotification(status="Installed"))

    # -- firmware and diagnostics over HTTP -------------------------------------------

    def _http(self, method: str, url: str, data: bytes | None = None) -> bytes:
        """One HTTP(S) request (in a thread); the answer's body, at most MAX_DOWNLOAD bytes."""
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{url!r} is not an HTTP(S) URL")
        request = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/octet-stream")
        context = self.ssl_context if url.startswith("https://") else None
        with urllib.request.urlopen(
            request, timeout=self.transfer_timeout, context=context
        ) as answer:
            body: bytes = answer.read(MAX_DOWNLOAD + 1)
        if len(body) > MAX_DOWNLOAD:
            raise ValueError(f"the download is over {MAX_DOWNLOAD} bytes")
        return body

    def _diagnostics_content(self) -> bytes:
        """A diagnostics file of `diagnostics_size` bytes: what this box said lately."""
        text = f"{self.id} diagnostics at {format_timestamp(self.now())}\n"
        text += "".join(f"{line}\n" for line in self.recent_log)
        data = text.encode()
        while len(data) < self.diagnostics_size:
            data += b"." * min(79, self.diagnostics_size - len(data) - 1) + b"\n"
        return data[: self.diagnostics_size]

    async def _report(self, payload: Any) -> None:
        """A status notification, dropped (and said) when the box is offline."""
        try:
            await self.send(payload)
        except ConnectionError:
            self.say(f"offline: {type(payload).__name__} {payload.status} not sent")
