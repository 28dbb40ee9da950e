"""The central system: WebSocket endpoint, security profiles, limits and session timers.

Plain asyncio, no Qt: the console runs it in its qasync loop, `--headless` on a plain one.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import gc
import hashlib
import hmac
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import peewee
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from evcms_desktop.csms import charger_admin
from evcms_desktop.csms.commands import CommandService
from evcms_desktop.csms.events import PERSISTED_KINDS, CsmsEvent, EventBus, EventKind
from evcms_desktop.csms.handlers import ChargerSession
from evcms_desktop.csms.protocol import SUBPROTOCOL
from evcms_desktop.csms.schedule_applier import replan_day
from evcms_desktop.csms.sessions import SessionLedger, StopOutcome
from evcms_desktop.csms.tls import ensure_server_certificate, server_context
from evcms_desktop.csms.writer import BatchWriter
from evcms_desktop.store.models import (
    Booking,
    BookingState,
    ChargePoint,
    ChargePointState,
    Connector,
    Event,
    Station,
    utcnow,
)
from evcms_desktop.store.stations import station_calendar

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
FREEZE_FROM_SESSIONS = 200


@dataclass
class CsmsConfig:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 9000  # 0: any free port (see CentralSystem.port)
    path_prefix: str = "/ocpp"
    security_profile: int = 0  # 0 none, 1 Basic auth, 2 TLS + Basic auth
    tls_cert: Path | None = None
    tls_key: Path | None = None
    accept_unknown: bool = False
    # Limits against abuse.
    max_frame_bytes: int = 64 * 1024  # larger frames get a CALLERROR
    max_websocket_message: int = 1024 * 1024  # larger ones close the connection (1009)
    rate_per_second: float = 20.0
    rate_burst: int = 60
    max_connections: int = 10_000
    # Timing.
    heartbeat_seconds: int = 300
    pending_retry_seconds: int = 60
    response_timeout: float = 30.0
    ping_interval: float | None = 60.0
    tick_seconds: float = 5.0
    authorize_grace: timedelta | None = None  # None: the station's setting (15 min)
    stop_grace: timedelta = timedelta(0)  # after the booked end, before RemoteStop
    stop_retry: timedelta = timedelta(minutes=1)
    reservation_lead: timedelta = timedelta(minutes=15)
    probe_features: bool = True  # ask each booted charger for SupportedFeatureProfiles
    writer_interval: float = 0.05


def raise_open_file_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (Linux's 1,024 stops ~1,000 chargers)."""
    try:
        import resource
    except ImportError:  # Windows has no such limit
        return -1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            log.warning("Could not raise the open-file limit above %d", soft)
    return soft


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization")
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


class CentralSystem:
    def __init__(
        self,
        config: CsmsConfig,
        db: peewee.SqliteDatabase,
        bus: EventBus | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.config = config
        self.db = db
        self.bus = bus or EventBus()
        self.clock = clock
        self.writer = BatchWriter(db, interval=config.writer_interval)
        self.ledger = SessionLedger(db, self.writer, grace=config.authorize_grace)
        self.commands = CommandService(self, timeout=config.response_timeout)
        self.port: int = config.port
        self._sessions: dict[str, ChargerSession] = {}
        self._server: Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._verified: dict[str, bytes] = {}  # ident -> sha256 of a password argon2 accepted
        self._bookings_signature: tuple[Any, ...] | None = None
        self._replanning: asyncio.Task[None] | None = None
        self._replan_again = False
        self._frozen_sessions = 0
        self.bus.subscribe(self._persist)

    # -- public --------------------------------------------------------------------

    async def start(self) -> None:
        """Read back the stored state and listen; `self.port` is the bound port."""
        raise_open_file_limit()
        self.writer.start()
        self.ledger.load_open()
        ChargePoint.update(connected=False).where(ChargePoint.connected).execute()
        self._watch_bookings(self.clock())
        if self.ledger.open:
            log.info("%d transactions still open from before", len(self.ledger.open))
        try:
            self._server = await serve(
                self._serve_connection,
                self.config.host,
                self.config.port,
                subprotocols=[SUBPROTOCOL],
                process_request=self._process_request,
                ssl=self._ssl_context(),
                max_size=self.config.max_websocket_message,
                compression=None,  # chargers rarely ask, and it costs memory per connection
                ping_interval=self.config.ping_interval,
                ping_timeout=self.config.ping_interval,
                logger=logging.getLogger("evcms_desktop.csms.websocket"),
            )
        except BaseException:
            await self.writer.stop()  # port taken, bad certificate: leave nothing running
            raise
        self.port = next(iter(self._server.sockets)).getsockname()[1]
        self._ticker = asyncio.get_running_loop().create_task(self._tick_forever())
        scheme = "wss" if self.config.security_profile == 2 else "ws"
        log.info(
            "Central system listening on %s://%s:%d%s/{chargePointId} (security profile %d)",
            scheme,
            self.config.host,
            self.port,
            self.config.path_prefix,
            self.config.security_profile,
        )

    async def stop(self) -> None:
        """Close every connection, cancel the timers and write what is pending."""
        if self._ticker is not None:
            self._ticker.cancel()
        for task in list(self._tasks):
            task.cancel()
        for session in list(self._sessions.values()):
            session.cancel_background()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        await self.writer.stop()
        ChargePoint.update(connected=False).where(ChargePoint.connected).execute()
        if self._frozen_sessions:
            gc.unfreeze()
            self._frozen_sessions = 0

    def is_connected(self, charge_point_id: str) -> bool:
        return charge_point_id in self._sessions

    def connected_ids(self) -> set[str]:
        return set(self._sessions)

    def session(self, charge_point_id: str) -> ChargerSession | None:
        return self._sessions.get(charge_point_id)

    def approve(self, ident: str) -> None:
        """Approve a Pending charger; a connected one is asked to boot again at once."""
        charger_admin.approve(ident)
        if ident in self._sessions:
            self.spawn(self.commands.trigger_message(ident, "BootNotification"))

    def publish(
        self,
        kind: EventKind,
        message: str,
        charge_point: str | None = None,
        connector: int | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        event = CsmsEvent(kind, message, charge_point, connector, data or {}, self.clock())
        if event.is_notification:
            log.info("%s", message)
        self.bus.publish(event)

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- connections -----------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext | None:
        if self.config.security_profile < 2:
            return None
        cert, key = self.config.tls_cert, self.config.tls_key
        if cert is None or key is None:
            cert, key = ensure_server_certificate(self.config.data_dir / "tls", self.config.host)
        return server_context(cert, key)

    def _ident_from_path(self, path: str) -> str | None:
        prefix = self.config.path_prefix.rstrip("/") + "/"
        path = path.split("?", 1)[0]
        if not path.startswith(prefix):
            return None
        ident = unquote(path[len(prefix) :])
        return ident if charger_admin.IDENT_RE.match(ident) else None

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        ident = self._ident_from_path(request.path)
        peer = connection.remote_address
        if ident is None:
            log.warning(
                "Refused %s: path %r is not %s/{id}", peer, request.path, self.config.path_prefix
            )
            return connection.respond(HTTPStatus.NOT_FOUND, "Unknown endpoint\n")
        if len(self._sessions) >= self.config.max_connections:
            log.warning(
                "Refused %s from %s: %d connections already", ident, peer, len(self._sessions)
            )
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "Too many connections\n")
        cp = ChargePoint.get_or_none(ChargePoint.ident == ident)
        known = cp is not None and cp.state != ChargePointState.REMOVED
        if not known and not (self.config.accept_unknown and cp is None):
            log.warning("Refused unknown charge point %s from %s", ident, peer)
            if self.config.security_profile == 0:
                return connection.respond(HTTPStatus.NOT_FOUND, "Unknown charge point\n")
            return self._unauthorized(connection)
        if self.config.security_profile >= 1:
            credentials = _basic_credentials(request)
            if credentials is None or credentials[0] != ident:
                log.warning("Refused %s from %s: no or wrong Basic credentials", ident, peer)
                return self._unauthorized(connection)
            password = credentials[1]
            if known and not await self._password_ok(cp, password):
                log.warning("Refused %s from %s: wrong password", ident, peer)
                return self._unauthorized(connection)
            connection.offered_password = password  # kept for a Pending charger's record
        return None

    @staticmethod
    def _unauthorized(connection: ServerConnection) -> Response:
        response = connection.respond(HTTPStatus.UNAUTHORIZED, "Unauthorized\n")
        response.headers["WWW-Authenticate"] = 'Basic realm="EVCMS", charset="UTF-8"'
        return response

    async def _password_ok(self, cp: ChargePoint, password: str) -> bool:
        digest = hashlib.sha256(f"{cp.password_hash}\0{password}".encode()).digest()
        remembered = self._verified.get(cp.ident)
        if remembered is not None and hmac.compare_digest(remembered, digest):
            return True
        ok = await asyncio.get_running_loop().run_in_executor(
            None, charger_admin.verify_password, cp.password_hash, password
        )
        if ok:
            self._verified[cp.ident] = digest
        return ok

    def _pending_charger(self, ident: str, password: str | None) -> ChargePoint:
        cp = ChargePoint.create(
            ident=ident,
            station=Station.select().order_by(Station.id).get(),
            state=ChargePointState.PENDING.value,
            password_hash=charger_admin.hash_password(password) if password else None,
        )
        log.warning("Unknown charge point %s connected; Pending until approved", ident)
        return cp

    async def _serve_connection(self, ws: ServerConnection) -> None:
        ident = self._ident_from_path(ws.request.path)
        assert ident is not None  # checked in _process_request
        cp = ChargePoint.get_or_none(ChargePoint.ident == ident)
        if cp is None:
            try:
                cp = self._pending_charger(ident, getattr(ws, "offered_password", None))
            except charger_admin.ChargerAdminError as exc:
                log.warning("Refused unknown %s: %s", ident, exc)
                await ws.close(1008, "Unknown charge point")
                return
        session = ChargerSession(self, cp, ws)
        old = self._sessions.get(ident)
        self._sessions[ident] = session
        if old is not None:
            log.warning("%s connected again: closing its previous connection", ident)
            self._retire(old)
        now = self.clock()
        ChargePoint.update(connected=True, last_seen_at=now).where(
            ChargePoint.id == cp.id
        ).execute()
        self.publish(
            EventKind.CHARGER_CONNECTED,
            f"{ident} connected from {ws.remote_address[0]}",
            ident,
            data={"address": ws.remote_address[0], "replaced": old is not None},
        )
        try:
            await session.start()
        except ConnectionClosed:
            pass
        finally:
            session.cancel_background()
            session.fail_pending(ConnectionError(f"{ident} disconnected"))
            if self._sessions.get(ident) is session:
                del self._sessions[ident]
                ChargePoint.update(connected=False, last_seen_at=self.clock()).where(
                    ChargePoint.id == cp.id
                ).execute()
                open_count = len(self.ledger.open_for(ident))
                self.publish(
                    EventKind.CHARGER_DISCONNECTED,
                    f"{ident} disconnected"
                    + (f" with {open_count} transaction(s) open" if open_count else ""),
                    ident,
                    data={"code": ws.close_code, "open_transactions": open_count},
                )

    def _retire(self, old: ChargerSession) -> None:
        old.cancel_background()
        old.fail_pending(ConnectionError(f"{old.id} connected again"))
        self.spawn(old._connection.close(1000, "Replaced by a new connection"))

    # -- events ----------------------------------------------------------------------

    def _persist(self, event: CsmsEvent) -> None:
        if event.kind not in PERSISTED_KINDS:
            return
        self.writer.add(
            Event,
            {
                "timestamp": event.timestamp,
                "kind": event.kind.value,
                "charge_point": event.charge_point,
                "connector_number": event.connector,
                "booking_code": event.data.get("booking_code"),
                "transaction_id": event.data.get("transaction_id"),
                "message": event.message,
                "data": event.data or None,
                "acknowledged": False,
            },
        )

    # -- timers ----------------------------------------------------------------------

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick_seconds)
            self.tick()

    def tick(self) -> None:
        """One round of the session timers; each step is independent of the others."""
        now = self.clock()
        for step in (
            self._auto_stop,
            self._no_shows,
            self._mirror_reservations,
            self._watch_bookings,
            self._freeze_long_lived,
        ):
            try:
                step(now)
            except Exception:
                log.exception("Session timer %s failed", step.__name__)

    def _auto_stop(self, now: datetime) -> None:
        for tx in list(self.ledger.open.values()):
            if tx.booking_end is None or now < tx.booking_end + self.config.stop_grace:
                continue
            if tx.charge_point not in self._sessions:
                continue  # tried again when it reconnects
            last = tx.stop_requested_at
            if last is not None and now - last < self.config.stop_retry:
                continue
            tx.stop_requested_at = now
            log.info("Booking %s ended: stopping transaction %s", tx.booking_code, tx.id)
            self.spawn(self._remote_stop(tx.charge_point, tx.id))

    async def _remote_stop(self, ident: str, transaction_id: int) -> None:
        result = await self.commands.remote_stop(ident, transaction_id)
        if result.ok:
            return
        log.warning(
            "RemoteStop of %s at %s: %s %s", transaction_id, ident, result.status, result.detail
        )
        tx = self.ledger.open.get(transaction_id)
        if result.status == "Rejected" and tx is not None:
            # The charger does not know the transaction (lost in a reboot while offline):
            # close it with the last reading it sent, as OCPP has nothing else to offer.
            meter_stop = int(tx.energy_wh if tx.energy_wh is not None else tx.meter_start_wh)
            cp = ChargePoint.get(ChargePoint.ident == ident)
            outcome = self.ledger.stop(
                cp, transaction_id, meter_stop, self.clock(), "Other", None, None
            )
            log.warning(
                "Closed transaction %s, unknown to %s, at %s Wh", transaction_id, ident, meter_stop
            )
            self.report_stop(ident, outcome)

    def report_stop(self, ident: str, outcome: StopOutcome) -> None:
        """Tell subscribers that a session ended, with its energy and cost."""
        tx = outcome.transaction
        if tx is None or outcome.already_stopped or outcome.price is None:
            return
        self.publish(
            EventKind.SESSION_STOPPED,
            f"Session {tx.id} at {ident} #{tx.connector_number} stopped:"
            f" {tx.energy_kwh} kWh, {outcome.price.total} {outcome.currency}",
            ident,
            tx.connector_number,
            data={
                "transaction_id": tx.id,
                "booking_code": outcome.booking_code,
                "energy_kwh": str(tx.energy_kwh),
                "cost": str(outcome.price.total),
                "currency": outcome.currency,
                "reason": tx.stop_reason,
            },
        )

    def _no_shows(self, now: datetime) -> None:
        for station in Station.select():
            grace = self.ledger.grace_for(station)
            late = Booking.select().where(
                (Booking.station == station)
                & (Booking.state == BookingState.CONFIRMED)
                & (Booking.start < now - grace)
                & (Booking.start >= now - grace - timedelta(days=2))
            )
            for booking in late:
                updated = (
                    Booking.update(state=BookingState.NO_SHOW.value, closed_at=now)
                    .where((Booking.id == booking.id) & (Booking.state == BookingState.CONFIRMED))
                    .execute()
                )
                if updated:
                    self.publish(
                        EventKind.BOOKING_NO_SHOW,
                        f"Booking {booking.code} was not used: no-show",
                        data={"booking_code": booking.code, "booking_id": booking.id},
                    )

    def _mirror_reservations(self, now: datetime) -> None:
        due = (
            Booking.select(Booking, Connector, ChargePoint)
            .join(Connector)
            .join(ChargePoint)
            .where(
                ChargePoint.supports_reservation
                & ChargePoint.connected
                & (
                    (
                        (Booking.state == BookingState.CONFIRMED)
                        & ~Booking.reservation_sent
                        & (Booking.start <= now + self.config.reservation_lead)
                        & (Booking.start > now - timedelta(hours=1))
                    )
                    | ((Booking.state == BookingState.CANCELLED) & Booking.reservation_sent)
                )
            )
        )
        for booking in due:
            ident = booking.connector.charge_point.ident
            if ident in self._sessions:
                self.spawn(self._mirror(booking, ident, now))

    async def _mirror(self, booking: Booking, ident: str, now: datetime) -> None:
        if booking.state == BookingState.CANCELLED:
            result = await self.commands.cancel_reservation(ident, booking.id)
            if result.status in ("Accepted", "Rejected"):  # Rejected: it had none
                Booking.update(reservation_sent=False).where(Booking.id == booking.id).execute()
            return
        # Marked first so that the next tick does not send it twice.
        Booking.update(reservation_sent=True).where(Booking.id == booking.id).execute()
        expiry = booking.start + self.ledger.grace_for(booking.station)
        result = await self.commands.reserve_now(
            ident, booking.connector.number, expiry, booking.code, booking.id
        )
        if not result.ok:
            log.warning("ReserveNow of %s at %s: %s", booking.code, ident, result.status)
            if result.status in ("Offline", "TimedOut", "Error"):
                Booking.update(reservation_sent=False).where(Booking.id == booking.id).execute()

    def _freeze_long_lived(self, now: datetime) -> None:
        """Keep the cyclic GC off the charger connections.

        Thousands of connections are a million long-lived objects, and each full
        collection walked them all: 0.5 s pauses at 5,000 chargers. Once the connections
        have grown by a tenth they are frozen (moved out of the collector's sight; they
        are still freed by reference counting). When many have gone they are unfrozen,
        so that the cycles of closed connections can be collected.
        """
        count = len(self._sessions)
        if count >= max(FREEZE_FROM_SESSIONS, int(self._frozen_sessions * 1.1) + 1):
            gc.collect(1)
            gc.freeze()
            self._frozen_sessions = count
        elif self._frozen_sessions and count < self._frozen_sessions * 0.75:
            gc.unfreeze()
            self._frozen_sessions = 0

    def _watch_bookings(self, now: datetime) -> None:
        """Tell subscribers when bookings changed, also when another process made them."""
        signature = (
            Booking.select(
                peewee.fn.COUNT(Booking.id),
                peewee.fn.MAX(Booking.id),
                peewee.fn.MAX(Booking.closed_at),
                peewee.fn.MAX(Booking.checked_in_at),
            )
            .tuples()
            .get()
        )
        if self._bookings_signature is not None and signature != self._bookings_signature:
            self.publish(EventKind.BOOKINGS_CHANGED, "Bookings changed")
            self._replan_limited_sites(now)
        self._bookings_signature = signature

    def _replan_limited_sites(self, now: datetime) -> None:
        """On a site with a power limit, a booking change re-plans the rest of its day."""
        if self._replanning is not None and not self._replanning.done():
            self._replan_again = True  # one more pass when this one is done
            return
        stations = list(Station.select().where(Station.site_power_limit_kw.is_null(False)))
        if stations:
            self._replan_again = False
            self._replanning = self.spawn(self._replan(stations, now))

    async def _replan(self, stations: list[Station], now: datetime) -> None:
        running = {
            tx.booking_id: tx.id for tx in self.ledger.open.values() if tx.booking_id is not None
        }
        for station in stations:
            tz = station_calendar(station).tz
            end = datetime.combine(now.astimezone(tz).date() + timedelta(days=1), time(0), tz)
            try:
                schedule, results = await replan_day(
                    self.commands, station, now, end, transactions=running
                )
            except Exception:
                log.exception("Re-planning the day of %s failed", station.name)
                continue
            refused = [r.booking_id for r, answer in results if not answer.ok]
            log.info(
                "Re-planned %s: %d bookings, %d profiles sent, %d refused or offline",
                station.name,
                len(schedule.plans),
                len(results),
                len(refused),
            )
        if self._replan_again:
            self._replan_limited_sites(self.clock())
