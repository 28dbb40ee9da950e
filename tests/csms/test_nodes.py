"""Several central systems (nodes) on one PostgreSQL database."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import timedelta

import psycopg
import pytest
from ocpp.v16 import call

from evcms_desktop.csms import charger_admin
from evcms_desktop.csms.commands import TIMED_OUT, CommandResult
from evcms_desktop.csms.events import EventKind
from evcms_desktop.csms.nodes import SITE_LOCK_CLASS, preferred_node
from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from evcms_desktop.domain.plans import PlanKind
from evcms_desktop.simulator.chargebox import ChargeBox
from evcms_desktop.store import nodes, operators
from evcms_desktop.store.database import open_database
from evcms_desktop.store.models import (
    BookingState,
    ChargePoint,
    ChargingTransaction,
    Connector,
    Event,
    MeterValue,
    Node,
    QueuedCommand,
    Station,
    TransactionState,
    utcnow,
)
from tests.csms.helpers import FakeClock, Recorder, book, run, running, until, url

pytestmark = pytest.mark.postgresql


@pytest.fixture
def pg(postgresql_url):
    db = open_database(postgresql_url, station_name="Test Station")
    station = Station.get()
    for ident in ("CP-A", "CP-B"):
        cp = ChargePoint.create(ident=ident, station=station)
        for number in (1, 2):
            Connector.create(charge_point=cp, number=number)
    yield db, station
    db.close()


def node_config(config: CsmsConfig, name: str) -> CsmsConfig:
    # The queue's poll is an hour: a command reaches the other node only through NOTIFY.
    return replace(
        config, node=name, command_poll_seconds=3600, node_heartbeat_seconds=0.1,
        node_expiry=timedelta(seconds=2),
    )  # fmt: skip


def test_two_nodes_route_commands_and_share_the_once_only_work(pg, clock: FakeClock, config):
    db, station = pg
    node_a = CentralSystem(node_config(config, "A"), db, clock=clock)
    node_b = CentralSystem(node_config(config, "B"), db, clock=clock)
    on_a = Recorder(node_a)
    on_b = Recorder(node_b)
    # A booking made on node B's side of the deployment (the same database).
    booking = book(db, station, clock, minutes=30, energy_kwh="8.8")
    # The deployment has operators, so a command a person queues must name one; a node's
    # own (its console's, its once-only work's) is the system's.
    operators.add_operator("oli", "operator", "operator-pw")

    async def scenario() -> int:
        async with running(node_a), running(node_b):
            box = ChargeBox("CP-A", url(node_a), clock=clock, meter_interval=3600)
            await box.connect()
            assert await box.boot() == "Accepted"
            assert nodes.holder("CP-A", utcnow(), timedelta(seconds=2)) == "A"
            # What happens on node A is seen on node B (and kept once, by A).
            seen = await on_b.wait_for(EventKind.CHARGER_BOOTED)
            assert (seen.charge_point, seen.origin) == ("CP-A", "A")
            assert node_b.reachable("CP-A") and not node_b.is_connected("CP-A")
            tx_id, status = await box.charge(booking.code, connector=1)
            assert status == "Accepted"
            await box.meter(tx_id, seconds=300)
            # A remote stop asked of node B reaches the charger on node A.
            result = await node_b.commands.remote_stop("CP-A", tx_id)
            assert (result.status, result.ok) == ("Accepted", True)
            await on_a.wait_for(EventKind.SESSION_STOPPED)
            # One node runs the site's once-only work; when it stops, the other takes it.
            await until(
                lambda: node_a.presence.leads(station.id) or node_b.presence.leads(station.id)
            )
            leaders = [n for n in (node_a, node_b) if n.presence.leads(station.id)]
            assert len(leaders) == 1
            follower = node_b if leaders[0] is node_a else node_a
            await leaders[0].stop()
            await until(lambda: follower.presence.leads(station.id))
            await box.close()
            return tx_id

    tx = ChargingTransaction.get_by_id(run(scenario(), timeout=60))
    assert tx.state == TransactionState.FINISHED and tx.stop_reason == "Remote"
    assert tx.price_total is not None and tx.booking_id == booking.id
    assert not ChargePoint.get(ChargePoint.ident == "CP-A").connected
    assert Event.select().where(Event.kind == "charger_booted").count() == 1
    stopped_on_b = on_b.of(EventKind.SESSION_STOPPED)
    assert stopped_on_b and stopped_on_b[0].data["transaction_id"] == tx.id
    routed = QueuedCommand.get(QueuedCommand.action == "RemoteStopTransaction")
    assert (routed.system, routed.operator_id, routed.requested_by) == (True, None, "node B")
    assert (routed.claimed_by, routed.status) == ("A", "Accepted")


def test_each_site_leads_on_its_own_node_and_moves_when_that_node_stops(
    pg, clock: FakeClock, config
):
    db, station = pg
    sites = [station.id]
    while {preferred_node(site, {"A", "B"}) for site in sites} != {"A", "B"}:
        sites.append(Station.create(name=f"Site {len(sites) + 1}", timezone="Asia/Tokyo").id)
    node_a = CentralSystem(node_config(config, "A"), db, clock=clock)
    node_b = CentralSystem(node_config(config, "B"), db, clock=clock)

    def led(node: CentralSystem) -> set[int]:
        return {site for site in sites if node.presence.leads(site)}

    async def scenario() -> None:
        async with running(node_a):
            await until(lambda: led(node_a) == set(sites))  # alone, it leads every site
            async with running(node_b):
                # Node B, a newcomer, is handed the sites that prefer it; no site has two.
                theirs = {site for site in sites if preferred_node(site, {"A", "B"}) == "B"}
                await until(lambda: led(node_b) == theirs and led(node_a) == set(sites) - theirs)
                assert all(_site_lock_taken(db, site) for site in sites)
            # Node B stopped: node A takes its sites back.
            await until(lambda: led(node_a) == set(sites))

    run(scenario(), timeout=60)


def test_a_starting_node_keeps_the_chargers_another_node_holds(pg, clock, config):
    db, _ = pg
    node_a = CentralSystem(node_config(config, "A"), db, clock=clock)
    node_b = CentralSystem(node_config(config, "B"), db, clock=clock)

    async def scenario() -> tuple[bool, bool]:
        async with running(node_a):
            box = ChargeBox("CP-A", url(node_a), clock=clock)
            await box.connect()
            await box.boot()
            async with running(node_b):  # the old code marked every charger offline here
                held = ChargePoint.get(ChargePoint.ident == "CP-A")
                seen_by_b = node_b.reachable("CP-A")
            await box.close()
            return held.connected and held.node == "A", seen_by_b

    assert run(scenario()) == (True, True)


def _site_lock_taken(db, site: int) -> bool:
    row = db.execute_sql(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND classid = %s AND objid = %s AND objsubid = 2",
        (SITE_LOCK_CLASS, site),
    ).fetchone()
    return bool(row[0])


def _headless_node(url_: str) -> tuple[subprocess.Popen[str], int]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    process = subprocess.Popen(
        [sys.executable, "-m", "evcms_desktop", "--db", url_, "--headless",
         "--host", "127.0.0.1", "--port", "0", "--security-profile", "0"],
        stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert process.stderr is not None
    for _ in range(400):
        line = process.stderr.readline()
        if match := re.search(r"listening on ws://127\.0\.0\.1:(\d+)/ocpp", line):
            return process, int(match.group(1))
    process.kill()
    raise AssertionError("the headless node did not say where it listens")


def test_failover_after_kill_9_loses_nothing_and_auto_stop_still_fires(
    pg, postgresql_url, clock: FakeClock, config
):
    """Node A (a real process) is killed with SIGKILL mid-session; the charger reconnects
    to node B, goes on metering, and B, now leading, stops it at the booked end."""
    db, station = pg
    clock.now = utcnow()  # node A runs on the real clock
    booking = book(db, station, clock, minutes=30, energy_kwh="8.8", kind=PlanKind.DURATION)
    node_a, port_a = _headless_node(postgresql_url)
    # Node B's name is one that leaves the site to node A: B does not take it over early.
    name_a = f"{socket.gethostname()}:{node_a.pid}"
    name_b = next(
        f"B{n}" for n in range(100) if preferred_node(station.id, {name_a, f"B{n}"}) == name_a
    )
    node_b = CentralSystem(node_config(config, name_b), db, clock=clock)
    deadline = time.monotonic() + 30
    while not _site_lock_taken(db, station.id):  # node A leads before node B starts
        assert time.monotonic() < deadline, "node A never took the site's lock"
        time.sleep(0.1)
    acknowledged: list[int] = []
    try:

        async def scenario() -> int:
            async with running(node_b):
                recorder = Recorder(node_b)
                box = ChargeBox("CP-A", f"ws://127.0.0.1:{port_a}/ocpp", clock=clock)
                box.meter_interval = 3600
                await box.connect()
                assert await box.boot() == "Accepted"
                tx_id, status = await box.charge(booking.code, connector=1)
                assert status == "Accepted"
                for _ in range(3):
                    # Node A runs on the real clock: the charger's may run ahead of it by
                    # less than the 5 minutes a central system trusts.
                    clock.advance(minutes=1)
                    await box.meter(tx_id, seconds=60)  # each answered by node A
                    acknowledged.append(3)  # energy, power and SoC per reading
                assert not node_b.presence.leads(station.id)  # node A leads the site
                node_a.send_signal(signal.SIGKILL)
                node_a.wait(10)
                # Within PATIENCE_TICKS of node B's ticks of the lock's release (timeout:
                # the test's patience, not the bound).
                await until(lambda: node_b.presence.leads(station.id), timeout=20)
                await until(lambda: box._reader is None or box._reader.done(), timeout=10)
                box.url = f"{url(node_b)}/CP-A"  # the balancer sends it to a live node
                await box.connect()
                assert await box.boot() == "Accepted"
                clock.advance(minutes=2)
                await box.meter(tx_id, seconds=120)
                acknowledged.append(3)
                # The booked end passes: node B, leading now, sends RemoteStop.
                clock.advance(minutes=30)
                await recorder.wait_for(EventKind.SESSION_STOPPED, timeout=20)
                await box.close()
                return tx_id

        tx_id = run(scenario(), timeout=90)
    finally:
        if node_a.poll() is None:
            node_a.kill()
        node_a.wait()
    tx = ChargingTransaction.get_by_id(tx_id)
    assert tx.state == TransactionState.FINISHED and tx.stop_reason == "Remote"
    assert tx.price_total is not None and tx.energy_kwh > 0
    assert tx.booking.state == BookingState.COMPLETED
    # Every reading a node answered is stored (the writer acknowledges after its commit),
    # plus the closing one.
    stored = MeterValue.select().where(MeterValue.transaction == tx_id).count()
    assert stored == sum(acknowledged) + 3


def test_chargers_list_says_what_the_connection_registry_and_the_last_message_say(
    pg, clock: FakeClock, config
):
    db, _ = pg
    node_a = CentralSystem(node_config(config, "A"), db, clock=clock)

    async def scenario() -> tuple[list, list]:
        async with running(node_a):
            box = ChargeBox("CP-A", url(node_a), clock=clock)
            await box.connect()
            await box.boot()
            clock.advance(minutes=3)
            await box.status(1, "Preparing")  # any message, not only a Heartbeat
            await node_a.writer.flush()
            heard = charger_admin.list_chargers()
            # Node A stops beating (a frozen process): its chargers are not online.
            Node.update(heartbeat_at=utcnow() - timedelta(minutes=1)).where(
                Node.name == "A"
            ).execute()
            stale = charger_admin.list_chargers()
            await box.close()
            return heard, stale

    heard, stale = run(scenario())
    cp_a = next(c for c in heard if c.ident == "CP-A")
    assert cp_a.connected and cp_a.last_seen_at == clock.now
    assert not next(c for c in stale if c.ident == "CP-A").connected


class _TableLock:
    """Another session holding `LOCK TABLE ... IN ACCESS EXCLUSIVE MODE` (every read of
    the table waits) on a thread of its own, until `release()` or `limit` seconds; it
    sets `waited` once a session waits for it with a statement LIKE `waiter`."""

    def __init__(self, url_: str, table: str, waiter: str, limit: float = 20.0) -> None:
        self.url, self.table, self.waiter, self.limit = url_, table, waiter, limit
        self.locked, self.waited, self.released = (threading.Event() for _ in range(3))
        self._release = threading.Event()
        self._thread = threading.Thread(target=self._hold, daemon=True)

    def _hold(self) -> None:
        with (
            psycopg.connect(self.url) as connection,
            psycopg.connect(self.url, autocommit=True) as watcher,
        ):
            connection.execute(f"LOCK TABLE {self.table} IN ACCESS EXCLUSIVE MODE")
            self.locked.set()
            deadline = time.monotonic() + self.limit  # the old code froze the loop till then
            while not self._release.wait(0.05) and time.monotonic() < deadline:
                row = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query LIKE %s",
                    (self.waiter,),
                ).fetchone()
                if row and row[0]:
                    self.waited.set()
            connection.rollback()
            self.released.set()

    def __enter__(self) -> _TableLock:
        self._thread.start()
        assert self.locked.wait(10)
        return self

    def release(self) -> None:
        self._release.set()
        self._thread.join(10)

    def __exit__(self, *_: object) -> None:
        self.release()


def test_a_locked_registry_delays_the_once_only_work_not_the_chargers(
    pg, postgresql_url, clock: FakeClock, config, caplog
):
    """The node's leadership round (the sites' locks, the live nodes) and its routing wait
    for a database that does not answer on threads of their own: while another session
    holds the `node` table locked, the other chargers' Heartbeats are answered at once,
    a routed command says the database did not answer, and the sites are led again after."""
    db, station = pg
    node = CentralSystem(replace(node_config(config, "A"), node_store_timeout=0.5), db, clock=clock)
    caplog.set_level(logging.WARNING, logger="evcms_desktop.csms.store_thread")

    async def scenario() -> CommandResult:
        async with running(node):
            boxes = [ChargeBox(ident, url(node), clock=clock) for ident in ("CP-A", "CP-B")]
            for box in boxes:
                await box.connect()
                assert await box.boot() == "Accepted"
            await until(lambda: node.presence.leads(station.id))
            # The leadership round reads the live nodes (and when each started).
            waiter = 'SELECT %"started_at"% FROM "node"%'
            with _TableLock(postgresql_url, "node", waiter) as lock:
                # A tick's leadership round now waits for the lock (on the loop, the old
                # code froze every charger until the lock was released).
                assert await asyncio.to_thread(lock.waited.wait, 10)
                assert await asyncio.wait_for(boxes[1].heartbeat(), 30)
                assert not lock.released.is_set(), "Heartbeat answered once the lock was gone"
                routed = await node.presence.route("CP-X", call.Reset(type="Soft"), timeout=2)
                assert not lock.released.is_set(), "routing waited for the lock"
            await until(lambda: node.presence.leads(station.id), timeout=10)
            for box in boxes:
                await box.close()
            return routed

    routed = run(scenario(), timeout=90)
    assert (routed.status, routed.ok) == (TIMED_OUT, False)
    assert "the database did not answer" in routed.detail
    said = caplog.text
    assert "did not answer the sites' leadership within 0.5 s" in said, said
    assert "answered the sites' leadership after" in said, said


def test_a_locked_bookings_table_skips_the_timers_not_the_chargers(
    pg, postgresql_url, clock: FakeClock, config, caplog
):
    """The timers read the bookings on the loop's connection: while another session held
    the `booking` table locked, the loop waited for it and no charger was answered. Its
    reads now wait at most `loop_busy_timeout_ms` for a lock; the step is skipped."""
    db, station = pg
    node = CentralSystem(node_config(config, "A"), db, clock=clock)

    async def scenario() -> None:
        async with running(node):
            box = ChargeBox("CP-A", url(node), clock=clock)
            await box.connect()
            assert await box.boot() == "Accepted"
            await until(lambda: node.presence.leads(station.id))
            with _TableLock(postgresql_url, "booking", 'SELECT %FROM "booking"%') as lock:
                assert await asyncio.to_thread(lock.waited.wait, 10)
                assert await asyncio.wait_for(box.heartbeat(), 30)
                assert not lock.released.is_set(), "Heartbeat answered once the lock was gone"
            await box.close()

    run(scenario(), timeout=90)
    assert "skipped: canceling statement due to lock timeout" in caplog.text, caplog.text
