"""The WebSocket endpoint: TLS, the handshake (path, connection cap, `charger_auth`), and
the registry of connected chargers, one `ChargerSession` per charger id."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import math
import ssl
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from http import HTTPStatus
from urllib.parse import unquote

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed, NegotiationError
from websockets.http11 import Request, Response

from evcms_desktop.csms import charger_admin
from evcms_desktop.csms.background import BackgroundTasks
from evcms_desktop.csms.charger_auth import ChargerAuth, peer_address
from evcms_desktop.csms.config import Clock, CsmsConfig
from evcms_desktop.csms.events import EventKind, Publish
from evcms_desktop.csms.handlers import ChargerSession
from evcms_desktop.csms.protocol import SUBPROTOCOL
from evcms_desktop.csms.refusals import RefusedHandshakes
from evcms_desktop.csms.tls import ensure_server_certificate, server_context
from evcms_desktop.csms.tolerance import strict_for
from evcms_desktop.csms.writer import BatchWriter, StoreUnavailable
from evcms_desktop.domain.text import log_safe
from evcms_desktop.domain.validation import is_charge_point_id
from evcms_desktop.store import nodes
from evcms_desktop.store.models import ChargePoint

log = logging.getLogger(__name__)

FREEZE_FROM_SESSIONS = 200
REGISTRY_RETRY_SECONDS = 1.0  # the connection registry is written again after a store fault
TRY_AGAIN_LATER = 1013  # WebSocket close code: the charger reconnects later
STORE_RETRY_AFTER = 5  # seconds: a handshake refused because the store cannot be read
LOGGED_PATH = 80  # characters of a refused request path in its log line
REGISTRY_LOG_NAMES = 10  # charger ids named in that line
SessionFactory = Callable[[ChargePoint, ServerConnection], ChargerSession]


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


class RedactCredentials(logging.Filter):
    """websockets logs every handshake header at DEBUG: never a charger's password."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if (
            isinstance(args, tuple)
            and len(args) >= 2
            and isinstance(args[0], str)
            and args[0].lower() in ("authorization", "proxy-authorization")
        ):
            record.args = (args[0], "[redacted]", *args[2:])
        return True


class QuietLifecycle(logging.Filter):
    """websockets says "server listening", "server closing" and "server closed" at INFO,
    and two lines for every connection or refused handshake; the central system says
    where it listens, when it stops, who connects and goes (events) and what it refuses
    (bounded, csms.refusals), so these are DEBUG: a knock was three lines at INFO."""

    LINES = frozenset(
        {
            "server listening on %s",
            "server closing",
            "server closed",
            "connection open",
            "connection closed",
            "HTTP response sent (%d %s)",
            "connection rejected (%d %s)",
        }
    )

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and record.msg in self.LINES:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return _WEBSOCKET_LOG.isEnabledFor(logging.DEBUG)
        return True


class SampledFrames(logging.Filter):
    """At DEBUG websockets logs every frame it reads or writes, before the central system
    sees it, let alone counts it against a charger's rate: under one charger's flood those
    lines were most of the loop's work and slowed every other charger. At most `per_second`
    of them are logged each second; the rest are counted and said in one line after it."""

    LINES = frozenset({"< %s", "> %s"})

    def __init__(self, per_second: int = 50) -> None:
        super().__init__()
        self.per_second = per_second
        self._second = 0
        self._logged = 0
        self._dropped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg not in self.LINES:
            return True
        second = int(time.monotonic())
        if second != self._second:
            dropped, self._dropped = self._dropped, 0
            self._second, self._logged = second, 0
            if dropped:
                _WEBSOCKET_LOG.debug("%d more frames read or written, not logged", dropped)
        if self._logged < self.per_second:
            self._logged += 1
            return True
        self._dropped += 1
        return False


_WEBSOCKET_LOG = logging.getLogger("evcms_desktop.csms.websocket")
_WEBSOCKET_LOG.addFilter(RedactCredentials())
_WEBSOCKET_LOG.addFilter(QuietLifecycle())
_WEBSOCKET_LOG.addFilter(SampledFrames())


def _unauthorized(connection: ServerConnection) -> Response:
    response = connection.respond(HTTPStatus.UNAUTHORIZED, "Unauthorized\n")
    response.headers["WWW-Authenticate"] = 'Basic realm="EVCMS", charset="UTF-8"'
    return response


class Listener:
    def __init__(
        self,
        config: CsmsConfig,
        new_session: SessionFactory,
        publish: Publish,
        open_transactions: Callable[[str], int],
        tasks: BackgroundTasks,
        clock: Clock,
        writer: BatchWriter,
    ) -> None:
        self.config = config
        self.port = config.port
        self.sessions: dict[str, ChargerSession] = {}
        self._new_session = new_session
        self._publish = publish
        self._open_transactions = open_transactions
        self._tasks = tasks
        self._clock = clock
        self._writer = writer
        self.refusals = RefusedHandshakes(log, config.refusal_interval_seconds)
        self._auth = ChargerAuth(config, publish, clock, writer.run, self.refusals)
        self._registry: dict[str, asyncio.Task[None]] = {}  # charger id: its registry write
        self._registry_unstored: dict[str, str] = {}  # charger id: why, since the last line
        self._registry_logged_at = -math.inf
        self._stopping = False
        self._server: Server | None = None
        self.tls: ssl.SSLContext | None = None  # once started, with security profile 2
        self._frozen_sessions = 0
        self._open_connections: set[ServerConnection] = set()  # handshaking or connected
        self._cooling: dict[str, float] = {}  # charger id -> monotonic time it may return

    async def start(self) -> None:
        """Listen; `self.port` is then the bound port."""
        self.tls = self._ssl_context()
        self._server = await serve(
            self._serve_connection,
            self.config.host,
            self.config.port,
            subprotocols=[SUBPROTOCOL],
            process_request=self._process_request,
            ssl=self.tls,
            max_size=self.config.max_websocket_message,
            compression=None,  # chargers rarely ask, and it costs memory per connection
            ping_interval=self.config.ping_interval,
            ping_timeout=self.config.ping_timeout,
            select_subprotocol=self._select_subprotocol,
            logger=_WEBSOCKET_LOG,
        )
        self.port = next(iter(self._server.sockets)).getsockname()[1]

    async def stop(self) -> None:
        self._stopping = True
        for session in list(self.sessions.values()):
            session.cancel_background()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        await asyncio.gather(*self._registry.values(), return_exceptions=True)
        await self._auth.close()
        if self._frozen_sessions:
            gc.unfreeze()
            self._frozen_sessions = 0

    # -- the handshake -----------------------------------------------------------------

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
        return ident if is_charge_point_id(ident) else None

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        peer = connection.remote_address
        address = peer_address(peer)
        held = self.refusals.held_for(address)
        if held > 0:  # refused too often: not checked, and counted again
            self.refusals.refused(address, "Refused %s: too many refused handshakes", peer)
            response = connection.respond(
                HTTPStatus.TOO_MANY_REQUESTS, "Too many refused handshakes: try again later\n"
            )
            response.headers["Retry-After"] = str(math.ceil(held))
            return response
        ident = self._ident_from_path(request.path)
        if ident is None:
            self.refusals.refused(
                address,
                "Refused %s: path '%s' is not %s/{id}",
                peer,
                log_safe(request.path, LOGGED_PATH),
                self.config.path_prefix,
            )
            return connection.respond(HTTPStatus.NOT_FOUND, "Unknown endpoint\n")
        wait = self._cooling.get(ident, 0.0) - time.monotonic()
        if wait > 0:
            self.refusals.refused(address, "Refused %s from %s: cooling down", ident, peer)
            response = connection.respond(
                HTTPStatus.TOO_MANY_REQUESTS, "Too many messages: try again later\n"
            )
            response.headers["Retry-After"] = str(math.ceil(wait))
            return response
        if len(self._open_connections) >= self.config.max_connections:
            self.refusals.refused(
                address,
                "Refused %s from %s: %d connections already",
                ident,
                peer,
                len(self._open_connections),
                hold=False,
            )
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "Too many connections\n")
        # The slot is taken before the password check awaits, so the cap is exact.
        self._open_connections.add(connection)
        self._tasks.spawn(self._free_slot_when_closed(connection))
        try:
            verdict = await self._auth.check(ident, request, peer)
        except StoreUnavailable as exc:
            self.refusals.refused(
                address,
                "Refused %s from %s: the store cannot be read (%s)",
                ident,
                peer,
                log_safe(str(exc)),
                level=logging.ERROR,
                hold=False,
            )
            response = connection.respond(
                HTTPStatus.SERVICE_UNAVAILABLE, "The central system's store is unavailable\n"
            )
            response.headers["Retry-After"] = str(STORE_RETRY_AFTER)
            return response
        if verdict.refused == HTTPStatus.NOT_FOUND:
            return connection.respond(HTTPStatus.NOT_FOUND, "Unknown charge point\n")
        if verdict.refused == HTTPStatus.TOO_MANY_REQUESTS:
            response = connection.respond(
                HTTPStatus.TOO_MANY_REQUESTS, "Too many failed logins: wait\n"
            )
            response.headers["Retry-After"] = str(verdict.retry_after or 1)
            return response
        if verdict.refused is not None:
            return _unauthorized(connection)
        if verdict.password_hash is not None:
            connection.offered_password_hash = verdict.password_hash  # a Pending charger's
        cp = verdict.charge_point
        connection.charge_point = cp  # the connection's session starts from it
        connection.strict = self.config.strict if cp is None else strict_for(cp, self.config.strict)
        return None

    async def _free_slot_when_closed(self, connection: ServerConnection) -> None:
        try:
            await connection.wait_closed()
        finally:
            self._open_connections.discard(connection)

    def _select_subprotocol(
        self, connection: ServerConnection, offered: Sequence[str]
    ) -> str | None:
        """ocpp1.6 when offered; none offered is taken as 1.6 (OCPP-J lets the server
        accept it) unless the charger is read strictly."""
        if SUBPROTOCOL in offered:
            return SUBPROTOCOL
        if not offered and not getattr(connection, "strict", self.config.strict):
            return None
        raise NegotiationError(f"expected the {SUBPROTOCOL} subprotocol")

    # -- the registry ----------------------------------------------------------------------

    async def _pending_charger(self, ident: str, password_hash: str | None) -> ChargePoint:
        """Record an unknown charger as Pending, on the writer's thread."""
        cp = await self._writer.run(
            lambda: charger_admin.create_pending(ident, password_hash, self.config.max_pending),
            f"{ident} Pending",
        )
        log.warning("Unknown charge point %s connected; Pending until approved", ident)
        return cp

    def _record_connection(self, ident: str, session: ChargerSession | None) -> None:
        """Write to the connection registry that this node holds `ident` (a session) or
        let it go (None), on the writer's thread; in order, and tried again while the
        store cannot commit, as long as it is still true."""
        previous = self._registry.get(ident)
        if previous is not None:
            previous.cancel()  # a write already handed to the writer still runs first
        node, now = self.config.node, self._clock()

        def job() -> None:
            if session is None:
                nodes.let_go(ident, node, now)
            else:
                nodes.hold(ident, node, now)

        async def write() -> None:
            while True:
                try:
                    await self._writer.run(job, f"{ident} connection registry", quiet=True)
                    return
                except StoreUnavailable as exc:
                    self._registry_unstored[ident] = str(exc)
                    self.sum_up_registry()
                    if self._stopping:
                        log.warning("%s left the connection registry stale", ident)
                        return
                await asyncio.sleep(REGISTRY_RETRY_SECONDS)

        task = asyncio.get_running_loop().create_task(write(), name=f"registry-{ident}")
        self._registry[ident] = task
        task.add_done_callback(functools.partial(self._registry_written, ident))

    def sum_up_registry(self) -> None:
        """One line per interval (the refusals') for the chargers whose registry rows could
        not be written (it was a line a second for each while the store could not commit)."""
        now = time.monotonic()
        interval = self.config.refusal_interval_seconds
        if not self._registry_unstored or now - self._registry_logged_at < interval:
            return
        idents = sorted(self._registry_unstored)
        named = ", ".join(idents[:REGISTRY_LOG_NAMES]) + (
            f" and {len(idents) - REGISTRY_LOG_NAMES} more"
            if len(idents) > REGISTRY_LOG_NAMES
            else ""
        )
        log.error(
            "Connection registry of %d charger(s) not stored (%s), tried again each %g s: %s",
            len(idents),
            log_safe(self._registry_unstored[idents[-1]]),
            REGISTRY_RETRY_SECONDS,
            named,
        )
        self._registry_unstored.clear()
        self._registry_logged_at = now

    def sum_up_refusals(self, _now: datetime) -> None:
        """The refused handshakes and registry faults not logged, summed up once their
        interval is over (also when nothing new comes to trigger it)."""
        self.refusals.roll()
        self.sum_up_registry()

    def _registry_written(self, ident: str, task: asyncio.Task[None]) -> None:
        if self._registry.get(ident) is task:
            del self._registry[ident]

    async def _serve_connection(self, ws: ServerConnection) -> None:
        ident = self._ident_from_path(ws.request.path)
        assert ident is not None  # checked in _process_request
        cp: ChargePoint | None = getattr(ws, "charge_point", None)
        if cp is None:
            try:
                cp = await self._pending_charger(ident, getattr(ws, "offered_password_hash", None))
            except charger_admin.ChargerAdminError as exc:
                log.warning("Refused unknown %s: %s", ident, exc)
                await ws.close(1008, "Unknown charge point")
                return
            except StoreUnavailable as exc:
                log.warning("Unknown charge point %s not recorded, try again later: %s", ident, exc)
                await ws.close(TRY_AGAIN_LATER, "The store is busy: try again later")
                return
        session = self._new_session(cp, ws)
        old = self.sessions.get(ident)
        self.sessions[ident] = session
        if old is not None:
            log.warning("%s connected again: closing its previous connection", ident)
            self._retire(old)
        self._record_connection(ident, session)
        self._publish(
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
            if self.sessions.get(ident) is session:
                del self.sessions[ident]
                self._record_connection(ident, None)
                open_count = self._open_transactions(ident)
                self._publish(
                    EventKind.CHARGER_DISCONNECTED,
                    f"{ident} disconnected"
                    + (f" with {open_count} transaction(s) open" if open_count else ""),
                    ident,
                    data={"code": ws.close_code, "open_transactions": open_count},
                )

    def disconnect_flooder(self, session: ChargerSession) -> None:
        """Close a charger that keeps breaking the message rate (1008, policy violation)
        and refuse it at the handshake for the cool-down."""
        now = time.monotonic()
        for ident in [i for i, until in self._cooling.items() if until <= now]:
            del self._cooling[ident]
        self._cooling[session.id] = now + self.config.rate_cooldown_seconds
        session.cancel_background()
        self._tasks.spawn(session._connection.close(1008, "Message rate limit exceeded"))

    def _retire(self, old: ChargerSession) -> None:
        old.cancel_background()
        old.fail_pending(ConnectionError(f"{old.id} connected again"))
        self._tasks.spawn(old._connection.close(1000, "Replaced by a new connection"))

    def freeze_long_lived(self, _now: datetime) -> None:
        """Keep the cyclic GC off the charger connections.

        Thousands of connections are a million long-lived objects, and each full
        collection walked them all: 0.5 s pauses at 5,000 chargers. Once the connections
        have grown by a tenth they are frozen (moved out of the collector's sight; they
        are still freed by reference counting). When many have gone they are unfrozen,
        so that the cycles of closed connections can be collected.
        """
        count = len(self.sessions)
        if count >= max(FREEZE_FROM_SESSIONS, int(self._frozen_sessions * 1.1) + 1):
            gc.collect(1)
            gc.freeze()
            self._frozen_sessions = count
        elif self._frozen_sessions and count < self._frozen_sessions * 0.75:
            gc.unfreeze()
            self._frozen_sessions = 0
