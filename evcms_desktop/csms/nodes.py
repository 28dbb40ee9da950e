"""This central system as one node among several on one PostgreSQL database.

- Presence: the node beats every `heartbeat_seconds`; a node silent for `expiry` is dead,
  and the chargers it held are released (they reconnect to a live node through the
  balancer).
- Routing: a command for a charger held by another live node goes through the command
  queue, and NOTIFY wakes the holder at once (its poll is only the fallback).
- Events: what happens on a node (chargers connecting, sessions, notifications; not the
  per-message OCPP log nor meter values) is sent to the others with NOTIFY and published
  on their buses, so every node's console sees every charger. The OCPP log goes on a
  channel of its own, in bounded batches, to attached consoles (`csms.ocpp_log`).
- Leadership, per site: the work that must run once for a site (its booking watcher,
  auto-stop, no-shows, reservations, re-planner) runs on the node holding that site's
  PostgreSQL advisory lock (class `SITE_LOCK_CLASS`, object the site's id), on a
  connection of its own, so two sites can lead on two nodes. Each site prefers one live
  node (rendezvous hashing over the live nodes' names): the preferred node tries the lock
  at every tick, any other node after `PATIENCE_TICKS` ticks without it, and a node
  hands a site over once to a preferred node that joined later. When a node dies its
  connection closes and its locks are free; a surviving node takes each site within
  `PATIENCE_TICKS` ticks (`tick_seconds`) of PostgreSQL noticing the dead connection.
- The event loop never waits on PostgreSQL here: the heartbeat runs on the node's
  presence thread, leadership on a thread of its own (the advisory locks on its one lock
  connection), routing and notifications on a third (`csms.store_thread`), each answer awaited
  at most `store_timeout`. A database that does not answer delays the once-only work and
  the routed commands, with a log line, never the chargers' messages.

On SQLite (one PC) there is one node: it always leads and nothing is routed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

import peewee
import psycopg

from evcms_desktop.csms.commands import OK_STATUSES, TIMED_OUT, CommandResult, CommandService
from evcms_desktop.csms.events import CsmsEvent, EventKind
from evcms_desktop.csms.ocpp_log import FLUSH_SECONDS, OcppLogFanOut, read_batch
from evcms_desktop.csms.protocol import to_payload
from evcms_desktop.csms.store_thread import StoreNotAnswering, StoreThread
from evcms_desktop.store import command_queue, nodes
from evcms_desktop.store.models import CommandState
from evcms_desktop.store.sessions import running_readings

log = logging.getLogger(__name__)

SITE_LOCK_CLASS = 0x4556434E  # "EVCN"; with a site's id: the lock of its once-only work
PATIENCE_TICKS = 2  # ticks a site goes without its preferred node before another takes it
LOCAL_KINDS = frozenset({EventKind.OCPP_MESSAGE, EventKind.METER_VALUES})  # too many to share
MAX_NOTIFY_BYTES = 7000  # PostgreSQL's limit for a payload is 8000
STORE_TIMEOUT = 5.0  # seconds the loop waits for the database's answer to a node's query


def _connect_arguments(db: peewee.PostgresqlDatabase) -> dict[str, Any]:
    params = {k: v for k, v in db.connect_params.items() if k != "prefer_psycopg3"}
    return {"dbname": db.database, "connect_timeout": 10, **params}


class NodePresence:
    def __init__(
        self,
        db: peewee.Database,
        name: str,
        *,
        heartbeat_seconds: float = 2.0,
        expiry: timedelta = timedelta(seconds=10),
        on_commands: Callable[[], None] | None = None,
        on_event: Callable[[CsmsEvent], None] | None = None,
        operator: str | None = None,
        store_timeout: float = STORE_TIMEOUT,
    ) -> None:
        self.db = db
        self.name = name
        self.operator = operator  # a console's signed-in operator, carried by its commands
        self.console = False  # an attached console's presence: its commands are never the system's
        self.requested_by = f"node {name}"
        self.heartbeat_seconds = heartbeat_seconds
        self.expiry = expiry
        self._on_commands = on_commands
        self._on_event = on_event
        self.multi_node = isinstance(db, peewee.PostgresqlDatabase)
        self._lock_connection: psycopg.Connection[Any] | None = None
        self._led: set[int] = set()  # the sites whose locks this node holds
        self._passed_over: dict[int, int] = {}  # site: ticks this node did not lead it
        self._handed_over: set[int] = set()  # each site is handed to a newcomer once
        self._taken_at: dict[int, datetime] = {}
        self._leading: frozenset[int] = frozenset()  # the sites led at the last tick
        self._lead_late = False  # the last leadership round is still waiting on the database
        # Chargers held by other live nodes (ident: node), read at every beat and kept up
        # to date by the other nodes' events, so that the loop need not ask the database.
        self._elsewhere: dict[str, str] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._presence = StoreThread(f"node {name} presence", store_timeout)  # the beat
        # The sites' leadership: the advisory locks' connection lives on this thread.
        self._leader = StoreThread(f"node {name} leadership", store_timeout)
        self._store = StoreThread(f"node {name} store", store_timeout)  # routing, NOTIFY
        self.listening = asyncio.Event()  # set while the LISTEN connection is up
        self.ocpp_log = OcppLogFanOut(name, self._notify_ocpp_log)
        self.hears_ocpp_log = False  # an attached console's: other nodes' OCPP frames

    async def start(self) -> None:
        await self._presence.run(self._begin)
        if self.multi_node:
            loop = asyncio.get_running_loop()
            self._tasks = [
                loop.create_task(self._beat_forever(), name="node-heartbeat"),
                loop.create_task(self._listen_forever(), name="node-listen"),
                loop.create_task(self._pass_ocpp_log_forever(), name="node-ocpp-log"),
            ]
            try:  # what other nodes announce from now on reaches this one
                await asyncio.wait_for(self.listening.wait(), 10)
            except TimeoutError:
                log.warning("Node %s is not listening to the others yet", self.name)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self._store.close()
        await self._leader.close(self._release_lock)
        try:
            await self._presence.close(self._leave)
        except peewee.DatabaseError as exc:
            log.warning("Node %s could not record that it left: %s", self.name, exc)

    # -- presence ----------------------------------------------------------------------

    def _begin(self) -> None:
        now = nodes.database_now()
        nodes.release_unheld(self.name, now, self.expiry)
        nodes.beat(self.name, now)
        if self.multi_node:
            self._elsewhere = nodes.held_by_others(self.name, now, self.expiry)

    def _beat(self) -> None:
        now = nodes.database_now()
        nodes.beat(self.name, now)
        nodes.expire(now, self.expiry)
        self._elsewhere = nodes.held_by_others(self.name, now, self.expiry)

    def _leave(self) -> None:
        """Record that this node left (on the presence thread)."""
        nodes.leave(self.name)

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            try:
                await self._presence.run(self._beat)
            except peewee.DatabaseError:
                log.exception("Node heartbeat failed")

    # -- leadership --------------------------------------------------------------------

    def leads(self, site: int) -> bool:
        """Whether this node ran the site's once-only work at its last tick."""
        return not self.multi_node or site in self._leading

    async def lead_sites(self, site_ids: Callable[[], Iterable[int]]) -> frozenset[int]:
        """The sites whose once-only work this node runs now (of those `site_ids` reads);
        called at every tick, it takes, keeps and hands over the sites' locks on the
        leadership thread. On SQLite: every site. None while the database does not answer
        (this round, or one before that is still waiting): the work waits, the loop does
        not."""
        if self._lead_late:
            return frozenset()
        try:
            self._leading = await self._leader.call(
                lambda: self._lead_round(site_ids),
                "the sites' leadership",
                on_late=self._lead_answered,
            )
        except StoreNotAnswering:
            self._lead_late = True
            self._leading = frozenset()
        return self._leading

    def _lead_answered(self, _sites: frozenset[int]) -> None:
        self._lead_late = False

    def _lead_round(self, site_ids: Callable[[], Iterable[int]]) -> frozenset[int]:
        """On the leadership thread."""
        sites = set(site_ids())
        if not self.multi_node:
            return frozenset(sites)
        try:
            now = nodes.database_now()
            self._lead(sites, now, {**nodes.live_since(now, self.expiry), self.name: now})
        except (psycopg.Error, peewee.DatabaseError):
            log.warning("Node %s lost its leader connection", self.name, exc_info=True)
            self._release_lock()
        return frozenset(self._led & sites)

    def _lead(self, sites: set[int], now: datetime, live: dict[str, datetime]) -> None:
        if self._lock_connection is None or self._lock_connection.closed:
            self._led.clear()
            self._lock_connection = psycopg.connect(**_connect_arguments(self.db), autocommit=True)
        connection = self._lock_connection
        connection.execute("SELECT 1")  # the locks are ours while their connection answers
        for site in sorted(self._led - sites):  # a site removed
            self._unlock(connection, site)
        for site in sorted(sites):
            preferred = preferred_node(site, live)
            if site in self._led:
                if (
                    preferred != self.name
                    and live[preferred] > self._taken_at[site]  # it started after we took it
                    and site not in self._handed_over  # once: it may be unable to take it
                ):
                    self._handed_over.add(site)
                    self._unlock(connection, site)
                    log.info("Node %s hands site %s over to node %s", self.name, site, preferred)
                continue
            waited = self._passed_over.get(site, 0) + 1
            self._passed_over[site] = waited
            if preferred != self.name and waited <= PATIENCE_TICKS:
                continue
            row = connection.execute(
                "SELECT pg_try_advisory_lock(%s, %s)", (SITE_LOCK_CLASS, site)
            ).fetchone()
            if row and row[0]:
                self._led.add(site)
                self._taken_at[site] = now
                self._passed_over.pop(site, None)
                log.info("Node %s now runs the once-only work of site %s", self.name, site)

    def _unlock(self, connection: psycopg.Connection[Any], site: int) -> None:
        connection.execute("SELECT pg_advisory_unlock(%s, %s)", (SITE_LOCK_CLASS, site))
        self._led.discard(site)
        self._passed_over[site] = 0

    def _release_lock(self) -> None:
        self._led.clear()
        if self._lock_connection is not None:
            with contextlib.suppress(psycopg.Error):
                self._lock_connection.close()
            self._lock_connection = None

    # -- routing -----------------------------------------------------------------------

    async def _listen_forever(self) -> None:
        """LISTEN for new queued commands and wake the queue; reconnect after a loss."""
        while True:
            try:
                connection = await psycopg.AsyncConnection.connect(
                    **_connect_arguments(self.db), autocommit=True
                )
                async with connection:
                    await connection.execute(f"LISTEN {nodes.COMMANDS_CHANNEL}")
                    await connection.execute(f"LISTEN {nodes.EVENTS_CHANNEL}")
                    if self.hears_ocpp_log:
                        await connection.execute(f"LISTEN {nodes.OCPP_LOG_CHANNEL}")
                    self.listening.set()
                    if self._on_commands is not None:
                        self._on_commands()  # what was queued while not listening
                    async for notice in connection.notifies():
                        if notice.channel == nodes.EVENTS_CHANNEL:
                            self._receive(notice.payload)
                        elif notice.channel == nodes.OCPP_LOG_CHANNEL:
                            self._receive_ocpp_log(notice.payload)
                        elif self._on_commands is not None:
                            self._on_commands()
            except psycopg.Error:
                self.listening.clear()
                log.warning("Node %s: LISTEN connection lost; again in 1 s", self.name)
                await asyncio.sleep(1)

    def holds_elsewhere(self, ident: str) -> bool:
        """Whether another live node holds this charger's connection, as the registry
        said at the last beat and the other nodes' events since (not asked of the
        database: the loop does not wait on it)."""
        return self.multi_node and ident in self._elsewhere

    # -- events ------------------------------------------------------------------------

    def fan_out(self, event: CsmsEvent) -> None:
        """Tell the other nodes of an event that happened here."""
        if not self.multi_node or event.origin is not None:
            return
        if event.kind is EventKind.OCPP_MESSAGE:
            self.ocpp_log.add(event)  # passed on in the next batch
        if event.kind in LOCAL_KINDS:
            return
        message = {
            "origin": self.name,
            "kind": event.kind.value,
            "message": event.message[:1000],
            "charge_point": event.charge_point,
            "connector": event.connector,
            "data": event.data,
            "timestamp": event.timestamp.isoformat(),
        }
        text = json.dumps(message, separators=(",", ":"), default=str)
        if len(text) > MAX_NOTIFY_BYTES:
            message["data"] = {}
            text = json.dumps(message, separators=(",", ":"), default=str)
        self._store.send(lambda: nodes.notify_event(text), f"a {event.kind.value} event")

    def _notify_ocpp_log(self, payload: str) -> None:
        self._store.send(lambda: nodes.notify_ocpp_log(payload), "the OCPP log")

    async def _pass_ocpp_log_forever(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            self.ocpp_log.flush()

    def _receive_ocpp_log(self, payload: str) -> None:
        if self._on_event is None:
            return
        for event in read_batch(payload):
            if event.origin != self.name:
                self._on_event(event)

    def _receive(self, payload: str) -> None:
        """An event from another node, checked before it is published here."""
        try:
            message = json.loads(payload)
            if message["origin"] == self.name:
                return
            event = CsmsEvent(
                kind=EventKind(message["kind"]),
                message=str(message["message"])[:1000],
                charge_point=message["charge_point"],
                connector=message["connector"],
                data=dict(message["data"] or {}),
                timestamp=datetime.fromisoformat(message["timestamp"]),
                origin=str(message["origin"]),
            )
        except (ValueError, KeyError, TypeError):
            log.warning("Ignored a malformed event notification from another node")
            return
        self._registry_news(event)
        if self._on_event is not None:
            self._on_event(event)

    def _registry_news(self, event: CsmsEvent) -> None:
        """Another node's charger connected or left: what `holds_elsewhere` says now."""
        ident, origin = event.charge_point, event.origin
        if ident is None or origin is None:
            return
        if event.kind in (EventKind.CHARGER_CONNECTED, EventKind.CHARGER_BOOTED):
            self._elsewhere[ident] = origin
        elif event.kind is EventKind.CHARGER_DISCONNECTED and self._elsewhere.get(ident) == origin:
            del self._elsewhere[ident]

    async def route(
        self,
        ident: str,
        payload: Any,
        timeout: float,
        operator: str | None = None,
        *,
        from_console: bool = False,
    ) -> CommandResult | None:
        """Send `payload` through the node holding `ident`; None if no live node does. It is
        queued with `operator`'s name (a person signed in at this node's console), else this
        presence's own. Without either it is the system's (a node's own work), unless it
        comes from a console (`from_console`, or an attached console's presence): then it
        has no operator, and the holding node refuses it on a database with operators."""
        asker = operator or self.operator
        from_console = from_console or self.console
        if not self.multi_node:
            return None
        action = type(payload).__name__
        body = to_payload(payload)

        def queue() -> tuple[str | None, int | None]:
            holder = nodes.holder(ident, nodes.database_now(), self.expiry)
            if holder is None or holder == self.name:
                return holder, None
            command_id = command_queue.enqueue(
                ident,
                action,
                body,
                requested_by=self.requested_by,
                operator=asker,
                system=asker is None and not from_console,  # a node's own work
            )
            return holder, command_id

        def withdraw_late(queued: tuple[str | None, int | None]) -> None:
            late_id = queued[1]
            if late_id is not None:  # queued after its asker gave up: withdrawn
                self._store.send(lambda: self._withdraw(late_id), f"withdrawing {action}")

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        unanswered = CommandResult(
            TIMED_OUT, False, f"the database did not answer in time: {action} not sent to {ident}"
        )
        try:
            holder, command_id = await self._store.call(
                queue,
                f"where {ident} is connected",
                timeout=self._wait(deadline),
                on_late=withdraw_late,
            )
        except StoreNotAnswering:
            return unanswered
        if command_id is None:
            return None
        queued_id: int = command_id
        while loop.time() < deadline:
            try:
                outcome = await self._store.call(
                    lambda: command_queue.outcome(queued_id),
                    f"{action}'s answer",
                    timeout=self._wait(deadline),
                )
            except StoreNotAnswering:
                continue
            if outcome is not None:
                status = outcome.status or outcome.state.value
                ok = outcome.state is CommandState.DONE and status in OK_STATUSES
                return CommandResult(status, ok, outcome.detail or "", outcome.result or {})
            await asyncio.sleep(0.05)
        try:
            withdrawn = await self._store.call(
                lambda: self._withdraw(queued_id), f"withdrawing {action}"
            )
        except StoreNotAnswering:
            return unanswered
        if withdrawn:
            return CommandResult(TIMED_OUT, False, f"{holder} did not pass on {action} in time")
        return CommandResult(TIMED_OUT, False, f"{ident} did not answer {action} in time")

    def _wait(self, deadline: float) -> float:
        """How long to wait for the database now: its bound, and no later than `deadline`."""
        left = deadline - asyncio.get_running_loop().time()
        return max(0.001, min(self._store.timeout, left))

    @staticmethod
    def _withdraw(command_id: int) -> bool:
        return command_queue.withdraw(
            command_id, "no answer from the holding node", nodes.database_now()
        )

    async def close_threads(self) -> None:
        """Close the store threads (an attached console's presence, which never starts)."""
        await self._store.close()
        await self._leader.close()
        await self._presence.close()


class Attachment:
    """A console attached to a deployment, without a central system of its own: it hears
    the nodes' events (NOTIFY) and sends every command through the command queue to the
    node holding the charger, as its signed-in operator, whose role that node checks. It
    holds no charger, does not beat and runs no once-only work."""

    def __init__(
        self,
        db: peewee.PostgresqlDatabase,
        name: str,
        operator: str | None,
        on_event: Callable[[CsmsEvent], None],
        *,
        timeout: float = 30.0,
        expiry: timedelta = timedelta(seconds=10),
        readings_seconds: float = 2.0,
    ) -> None:
        self.presence = NodePresence(db, name, expiry=expiry, on_event=on_event, operator=operator)
        self._on_event = on_event
        self.readings_seconds = readings_seconds
        self._readings: dict[int, tuple[float | None, ...]] = {}  # transaction: last published
        self._poller: asyncio.Task[None] | None = None
        self.presence.requested_by = f"console {name}"
        self.presence.hears_ocpp_log = True
        self.presence.console = True
        self.commands = CommandService(lambda _ident: None, timeout, route=self.presence.route)
        self._listener: asyncio.Task[None] | None = None

    def sign_in_as(self, operator: str | None) -> None:
        """The operator signed in at the console now (None: nobody), named on its commands."""
        self.presence.operator = operator

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._listener = loop.create_task(self.presence._listen_forever(), name="console-listen")
        self._poller = loop.create_task(self._poll_readings_forever(), name="console-readings")
        try:
            await asyncio.wait_for(self.presence.listening.wait(), 10)
        except TimeoutError:
            log.warning("The console does not hear the deployment's events yet")

    async def stop(self) -> None:
        for task in (self._listener, self._poller):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._listener = self._poller = None
        await self.presence.close_threads()

    async def _poll_readings_forever(self) -> None:
        while True:
            try:
                await self.poll_readings()
            except (peewee.DatabaseError, StoreNotAnswering):
                log.warning("The console could not read the chargers' latest readings")
            await asyncio.sleep(self.readings_seconds)

    async def poll_readings(self) -> None:
        """Meter values stay on the node that received them (too many to NOTIFY); the
        console reads each running transaction's latest reading from the store instead
        (bounded: one row per running transaction, at most 1000, on the presence's store
        thread) and publishes those that changed, as the node's own console would see them."""
        rows = await self.presence._store.call(running_readings, "the latest readings")
        running = {row[2] for row in rows}
        self._readings = {tx: r for tx, r in self._readings.items() if tx in running}
        for ident, connector, tx_id, energy_wh, power_kw, soc in rows:
            reading = (energy_wh, power_kw, soc)
            if self._readings.get(tx_id) == reading or reading == (None, None, None):
                continue
            self._readings[tx_id] = reading
            self._on_event(
                CsmsEvent(
                    EventKind.METER_VALUES,
                    f"{ident} #{connector}: latest reading (from the store)",
                    charge_point=ident,
                    connector=connector,
                    data={
                        "transaction_id": tx_id,
                        "energy_wh": energy_wh,
                        "power_kw": power_kw,
                        "soc": soc,
                    },
                    origin="store",
                )
            )


def preferred_node(site: int, live: Iterable[str]) -> str:
    """The live node a site's once-only work prefers (rendezvous hashing: every node
    computes the same answer, and a node leaving moves only its own sites)."""

    def weight(name: str) -> bytes:
        return hashlib.blake2b(f"{site}:{name}".encode(), digest_size=8).digest()

    return max(sorted(live), key=weight)
