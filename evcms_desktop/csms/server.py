"""The central system: its parts put together, started and stopped as one.

Plain asyncio, no Qt: the console runs it in its qasync loop, `--headless` on a plain one.

| part | module |
|---|---|
| WebSocket endpoint, TLS, handshake, connection registry and cap | `listener` |
| which charger may connect, its Basic-auth password | `charger_auth` |
| one connected charger's messages, from a `SessionContext` | `handlers` |
| commands to chargers, found through a lookup function | `commands` |
| auto-stop, no-shows, reservations | `session_timers` |
| booking changes and the site schedule | `replanner` |
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import Any

import peewee
from websockets.asyncio.server import ServerConnection

from evcms_desktop.csms import charger_admin
from evcms_desktop.csms.background import BackgroundTasks
from evcms_desktop.csms.command_queue import CommandQueueServer
from evcms_desktop.csms.commands import CommandService
from evcms_desktop.csms.config import SET_ASIDE_FILE, STORE_TROUBLE_PREFIX, Clock, CsmsConfig
from evcms_desktop.csms.deviations import DeviationRecorder
from evcms_desktop.csms.events import PERSISTED_KINDS, CsmsEvent, EventBus, EventKind, Publisher
from evcms_desktop.csms.file_transfers import FileTransfers
from evcms_desktop.csms.handlers import ChargerSession, SessionContext
from evcms_desktop.csms.health_file import HealthFile
from evcms_desktop.csms.listener import Listener, raise_open_file_limit
from evcms_desktop.csms.local_list import LocalListSync
from evcms_desktop.csms.nodes import NodePresence
from evcms_desktop.csms.plan_keeper import PlanKeeper
from evcms_desktop.csms.protocol import websocket_url
from evcms_desktop.csms.replanner import Replanner
from evcms_desktop.csms.session_timers import SessionTimers
from evcms_desktop.csms.sessions import SessionLedger
from evcms_desktop.csms.tolerance import DEVIATION_KINDS, Deviation
from evcms_desktop.csms.writer import BatchWriter, StoreUnavailable
from evcms_desktop.domain.text import clean_json, clean_text, int64_or_none, log_safe
from evcms_desktop.store import notices
from evcms_desktop.store.database import PRAGMAS
from evcms_desktop.store.models import ChargePoint, Event, Station, utcnow
from evcms_desktop.store.stations import site_ids

__all__ = ["CentralSystem", "CsmsConfig"]

log = logging.getLogger(__name__)

PRUNE_BATCH = 5_000  # events deleted per transaction


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
        self.publish = Publisher(self.bus, clock)
        self.writer = BatchWriter(
            db,
            set_aside_path=config.data_dir / SET_ASIDE_FILE,
            lock_timeout=config.store_lock_timeout,
            retry_pause=config.store_retry_pause,
            on_health=self._store_health,
            on_set_aside=self._rows_set_aside,
        )
        self.store_error: str | None = None  # while the store cannot commit
        self.health_file = HealthFile(config.data_dir, config.node)  # the trouble, beside it
        self.ledger = SessionLedger(db, self.writer, grace=config.authorize_grace)
        self.presence = NodePresence(
            db,
            config.node,
            heartbeat_seconds=config.node_heartbeat_seconds,
            expiry=config.node_expiry,
            store_timeout=config.node_store_timeout,
            on_commands=self._wake_command_queue,
            on_event=self.bus.publish,
        )
        self.commands = CommandService(
            self.session, timeout=config.response_timeout, route=self.presence.route
        )
        self.tasks = BackgroundTasks()
        self.deviations = DeviationRecorder(self._announce_deviation)
        self._deviation_flush: asyncio.Task[None] | None = None
        self.plan_keeper = PlanKeeper(self.commands, self.publish)
        self.transfers = FileTransfers(
            config.data_dir,
            self.commands,
            self._local_address,
            self.publish,
            clock,
            host=config.host,
            port=config.file_port or 0,
            max_upload_bytes=config.max_upload_bytes,
        )
        self._context = SessionContext(
            config,
            self.ledger,
            clock,
            self.publish,
            self.bus.publish,
            self.commands,
            self.deviations,
            self.plan_keeper,
            self.transfers,
            on_flood=self._disconnect_flooder,
        )
        self.listener = Listener(
            config,
            self._new_session,
            self.publish,
            lambda ident: len(self.ledger.open_for(ident)),
            self.tasks,
            clock,
            self.writer,
        )
        self.timers = SessionTimers(
            config, self.ledger, self.commands, self.reachable, self.publish, self.tasks, clock
        )
        self.replanner = Replanner(self.ledger, self.commands, self.publish, self.tasks, clock)
        self.command_queue = CommandQueueServer(
            self.commands,
            self.is_connected,
            self.tasks,
            clock,
            config.command_poll_seconds,
            config.node,
            self.writer.run,
            self.transfers.resolve_location,
        )
        self.local_lists = LocalListSync(
            self.commands,
            lambda: {i for i, s in self.listener.sessions.items() if s.booted},
            self.tasks,
            clock,
        )
        self._ticker: asyncio.Task[None] | None = None
        self._queue_server: asyncio.Task[None] | None = None
        self._pruner: asyncio.Task[None] | None = None
        self.bus.subscribe(self._persist)
        self.bus.subscribe(self.presence.fan_out)

    @property
    def port(self) -> int:
        """The port listened on (the bound one once started, also when configured as 0)."""
        return self.listener.port

    async def start(self) -> None:
        """Read back the stored state and listen."""
        raise_open_file_limit()
        wait_ms = int(self.config.loop_busy_timeout_ms)
        if self.writer.sqlite:
            self.db.execute_sql(f"PRAGMA busy_timeout={wait_ms}")
        else:  # a table another session holds locked: the loop's reads give up, not wait
            self.db.execute_sql(f"SET lock_timeout = {wait_ms}")
        self.writer.start()
        self.ledger.load_open()
        await self.presence.start()
        self.replanner.watch_bookings(self.clock(), site_ids())
        if self.ledger.open:
            log.info("%d transactions still open from before", len(self.ledger.open))
        try:
            await self.listener.start()
            if self.config.file_port is not None:
                self.transfers.tls = self.listener.tls
                await self.transfers.start()
        except BaseException:
            await self.listener.stop()
            await self.writer.stop()  # port taken, bad certificate: leave nothing running
            raise
        loop = asyncio.get_running_loop()
        self._ticker = loop.create_task(self._tick_forever())
        self._queue_server = loop.create_task(self.command_queue.run_forever())
        self._pruner = loop.create_task(self._prune_forever())
        log.info(
            "Central system listening on %s/{chargePointId} (security profile %d)",
            self.url(self.config.host),
            self.config.security_profile,
        )
        if self.config.security_profile == 0:
            log.warning(
                "Security profile 0: chargers connect without a password; anything on the"
                " network can act as a registered charger (choose profile 1 or 2)"
            )

    async def stop(self) -> None:
        """Close every connection, cancel the timers and write what is pending."""
        for timer in (self._ticker, self._queue_server, self._pruner):
            if timer is not None:
                timer.cancel()
        self.tasks.cancel_all()
        await self.listener.stop()
        await self.transfers.stop()
        if self._deviation_flush is not None:
            await self._deviation_flush
        await self.deviations.flush(self.writer.run)
        await self.writer.stop()
        self.health_file.healthy()
        await self.presence.stop()
        with contextlib.suppress(peewee.DatabaseError):  # a store that cannot be written
            if self.writer.sqlite:
                self.db.execute_sql(f"PRAGMA busy_timeout={PRAGMAS['busy_timeout']}")
            else:
                self.db.execute_sql("RESET lock_timeout")

    def url(self, host: str | None = None) -> str:
        """The endpoint without the charger id; by default as reached on this machine."""
        if host is None:
            host = "127.0.0.1" if self.config.host in ("0.0.0.0", "::") else self.config.host
        tls = self.config.security_profile == 2
        return websocket_url(host, self.port, self.config.path_prefix, tls=tls)

    def _local_address(self, charge_point_id: str) -> str | None:
        """The address a connected charger reached us on: the host of the URLs it is given."""
        session = self.session(charge_point_id)
        if session is None:
            return None
        address = session._connection.local_address
        return str(address[0]) if address else None

    def is_connected(self, charge_point_id: str) -> bool:
        return charge_point_id in self.listener.sessions

    def reachable(self, charge_point_id: str) -> bool:
        """Connected here, or to another live node that commands are routed to."""
        return self.is_connected(charge_point_id) or self.presence.holds_elsewhere(charge_point_id)

    def connected_ids(self) -> set[str]:
        return set(self.listener.sessions)

    def session(self, charge_point_id: str) -> ChargerSession | None:
        return self.listener.sessions.get(charge_point_id)

    def approve(self, ident: str, station: Station) -> None:
        """Approve a Pending charger into `station`; a connected one is asked to boot
        again at once."""
        charger_admin.approve(ident, station)
        if self.is_connected(ident):
            self.tasks.spawn(self.commands.trigger_message(ident, "BootNotification"))

    def _new_session(self, cp: ChargePoint, connection: ServerConnection) -> ChargerSession:
        self.local_lists.forget(cp.ident)
        return ChargerSession(self._context, cp, connection)

    def _persist(self, event: CsmsEvent) -> None:
        if event.kind not in PERSISTED_KINDS or event.origin is not None:
            return  # another node's event: that node keeps it
        code = event.data.get("booking_code")
        self.writer.add(
            Event,
            {
                "timestamp": event.timestamp,
                "kind": event.kind.value,
                "charge_point": event.charge_point,
                "connector_number": int64_or_none(event.connector),
                "booking_code": clean_text(code, 40) if isinstance(code, str) else None,
                "transaction_id": int64_or_none(event.data.get("transaction_id")),
                "message": clean_text(event.message, 2000),
                "data": clean_json(event.data) or None,
                "acknowledged": False,
            },
            origin=f"{event.charge_point or 'central system'} {event.kind.value} event",
        )

    def _store_health(self, error: str | None) -> None:
        """The writer's news about the store, for the console's status bar, the log and the
        health file (what `sessions` and `chargers list` read while the store fails)."""
        self.store_error = error
        self._write_health(self.clock())
        self.publish(
            EventKind.STORE_TROUBLE,
            "The store commits again"
            if error is None
            else f"{STORE_TROUBLE_PREFIX} ({log_safe(error, 200)}): chargers get InternalError"
            " and keep their data",
            data={"error": error},
        )

    def _write_health(self, now: datetime) -> None:
        if self.store_error is None:
            self.health_file.healthy()
        else:
            self.health_file.trouble(self.store_error, now, set(self.listener.sessions))

    def _rows_set_aside(self, count: int) -> None:
        path = self.writer.set_aside_path
        self.publish(
            EventKind.ROWS_SET_ASIDE,
            f"{count} row(s) the store refused were set aside in {path.name}"
            f" ({self.writer.set_aside_count} since start)",
            data={
                "count": count,
                "total": self.writer.set_aside_count,
                "file": str(path),
            },
        )

    async def prune_events(self) -> int:
        """Delete the events older than the retention period, in batches on the writer's
        thread (each a short transaction); how many went."""
        before = self.clock() - timedelta(days=self.config.event_retention_days)
        total = 0
        while True:
            pruned = await self.writer.run(
                lambda: notices.prune_events(before, PRUNE_BATCH), "event pruning"
            )
            total += pruned
            if pruned < PRUNE_BATCH:
                break
        if total:
            log.info("Pruned %d events older than %d days", total, self.config.event_retention_days)
        return total

    async def _prune_forever(self) -> None:
        while True:
            try:
                await self.prune_events()
            except StoreUnavailable as exc:
                log.warning("Events not pruned this time: %s", exc)
            await asyncio.sleep(self.config.prune_interval_seconds)

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick_seconds)
            await self.tick_round()

    async def tick_round(self) -> None:
        """Which sites this node leads (asked of the store off the loop), then a tick."""
        try:
            sites = await self.presence.lead_sites(site_ids)
        except peewee.DatabaseError as exc:
            log.warning("Timers skipped: could not read the sites: %s", exc)
            sites = frozenset()
        self.tick(sites)

    def tick(self, sites: Collection[int] = frozenset()) -> None:
        """One round of the timers, the once-only work of `sites` included; each step is
        independent of the others."""
        now = self.clock()
        if sites and self.presence.multi_node:
            self._step(self.ledger.sync_open, now)  # see what other nodes opened and closed
        # once per site: on the node leading the site (see csms.nodes)
        for site_step in (
            self.timers.auto_stop,
            self.timers.overstays,
            self.timers.no_shows,
            self.timers.mirror_reservations,
            self.replanner.watch_bookings,
        ):
            if sites:
                self._step(site_step, now, sites)
        # each node's own chargers
        own = (
            self.listener.freeze_long_lived,
            self.listener.sum_up_refusals,
            self._write_health,
            self._flush_deviations,
            self.local_lists.tick,
        )
        for step in own:
            self._step(step, now)

    @staticmethod
    def _step(step: Callable[..., None], *arguments: Any) -> None:
        try:
            step(*arguments)
        except peewee.DatabaseError as exc:  # the store's trouble, said by the writer too
            log.warning("Session timer %s skipped: %s", step.__name__, exc)
        except Exception:
            log.exception("Session timer %s failed", step.__name__)

    def _disconnect_flooder(self, session: ChargerSession) -> None:
        self.listener.disconnect_flooder(session)

    def _wake_command_queue(self) -> None:
        self.command_queue.wake()

    def _flush_deviations(self, _now: datetime) -> None:
        """One flush at a time, never cancelled (a cancelled one may still commit), none
        while the store cannot commit (the counts wait in memory)."""
        if self.writer.store_error is not None:
            return
        if self._deviation_flush is None or self._deviation_flush.done():
            task = asyncio.get_running_loop().create_task(self.deviations.flush(self.writer.run))
            task.add_done_callback(self._deviations_flushed)
            self._deviation_flush = task

    @staticmethod
    def _deviations_flushed(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("Deviation counts not stored", exc_info=task.exception())

    def _announce_deviation(self, ident: str, deviation: Deviation) -> None:
        self.publish(
            EventKind.CHARGER_DEVIATION,
            f"{ident}: tolerated {DEVIATION_KINDS.get(deviation.kind, deviation.kind)}"
            f" ({deviation.example})",
            ident,
            data={"kind": deviation.kind, "example": deviation.example},
        )
