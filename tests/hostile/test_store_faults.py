"""The store made to fail: chargers get InternalError (and keep their data) or keep being
answered in time; nothing acknowledged is lost; the operator is told."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import peewee
import psycopg
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from evcms_desktop.app.log_file import EXIT_STORE_UNWRITABLE
from evcms_desktop.csms import charger_admin
from evcms_desktop.csms.events import EventKind
from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from evcms_desktop.csms.writer import BatchWriter, StoreUnavailable
from evcms_desktop.store.database import open_database
from evcms_desktop.store.deviations import deviation_totals
from evcms_desktop.store.models import (
    ChargePoint,
    ChargePointState,
    ChargingTransaction,
    Connector,
    MeterValue,
)
from tests.conftest import BOTH_ENGINES, chattr
from tests.csms.helpers import raw_connect, running
from tests.hostile.helpers import RawCharger, meter_values, run

LOCK_SECONDS = 10.0
# On PostgreSQL the other process locks every table the central system writes against
# writes (EXCLUSIVE mode lets reads through, as SQLite's write lock does in WAL mode).
WRITTEN_TABLES = (
    "charge_point, connector, charging_transaction, meter_value, event, charger_deviation"
)


def _stored_values() -> set[str]:
    return {v for (v,) in MeterValue.select(MeterValue.value).tuples()}


async def _meter_until(charger: RawCharger, stop: asyncio.Event, tag: str) -> tuple[set, list]:
    acknowledged: set[str] = set()
    errors: list[str] = []
    seq = 0
    while not stop.is_set():
        seq += 1
        value = f"{tag}{seq:05d}"
        answer = await charger.call("MeterValues", meter_values(None, value))
        if answer[0] == 3:
            acknowledged.add(value)
        else:
            errors.append(answer[2])
        await asyncio.sleep(0.05)
    return acknowledged, errors


async def _start_stop_until(charger: RawCharger, stop: asyncio.Event) -> tuple[list, list]:
    """Starts and stops while the store is locked: each is answered InternalError (the
    charger sends it again) or with its result once stored."""
    answers: list[tuple[str, list]] = []
    seq = 0
    while not stop.is_set():
        seq += 1
        stamp = f"2026-12-01T06:{seq // 60 % 60:02d}:{seq % 60:02d}Z"
        start = await charger.call(
            "StartTransaction",
            {"connectorId": 1, "idTag": f"T{seq}", "meterStart": 0, "timestamp": stamp},
        )
        answers.append(("start", start))
        if start[0] == 3:
            stopped = await charger.call(
                "StopTransaction",
                {"transactionId": start[2]["transactionId"], "meterStop": 10, "timestamp": stamp},
            )
            answers.append(("stop", stopped))
        await asyncio.sleep(0.1)
    return [a for a in answers if a[1][0] == 3], [a for a in answers if a[1][0] == 4]


async def _boot_while_locked(cs: CentralSystem, ident: str, released: threading.Event) -> dict:
    """A charger that connects while the store is locked: it boots, or is told to try
    again (InternalError, or a close with 1013) and does so until the lock is gone."""
    seen: dict = {"closes": [], "errors": [], "status": None}
    while seen["status"] is None:
        try:
            charger = await RawCharger.connect(cs, ident)
            while seen["status"] is None:
                answer = await charger.call(
                    "BootNotification", {"chargePointVendor": "Late", "chargePointModel": "T"}
                )
                if answer[0] == 3:
                    seen["status"] = answer[2]["status"]
                else:
                    seen["errors"].append(answer[2])
                    await asyncio.sleep(0.5)
            heartbeat = await charger.call("Heartbeat", {})
            seen["heartbeat"] = heartbeat[0]
            await charger.close()
        except ConnectionClosed as closed:
            seen["closes"].append(closed.rcvd.code if closed.rcvd else None)
            if closed.rcvd is None or closed.rcvd.code != 1013:
                return seen  # not a retry answer: the charger was dropped
            await asyncio.sleep(0.5)
    seen["after_release"] = released.is_set()
    return seen


def _hold_write_lock(
    target: str, locked: threading.Event, finish: threading.Event, released: threading.Event
) -> None:
    """Another connection holds the write lock until told (or 3 * LOCK_SECONDS at most)."""
    if target.startswith("postgresql://"):
        with psycopg.connect(target) as other:
            other.execute(f"LOCK TABLE {WRITTEN_TABLES} IN EXCLUSIVE MODE")
            locked.set()
            finish.wait(3 * LOCK_SECONDS)
    else:
        other = sqlite3.connect(target, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        locked.set()
        finish.wait(3 * LOCK_SECONDS)
        other.execute("COMMIT")
        other.close()
    released.set()


@pytest.mark.parametrize("db_target", BOTH_ENGINES, indirect=True)
def test_write_lock_held_by_another_process(db, station, config: CsmsConfig, db_target: str):
    """Another connection holds the write lock for 10 s: every Heartbeat is answered while
    it is held (their round trips are benchmarks/store_faults.py's), meter values, starts
    and stops are refused with InternalError (not acknowledged and dropped)
    or answered once stored; none is lost. A registered charger and an unknown one
    (--accept-unknown) that connect meanwhile boot once the lock is gone, and tolerated
    deviations are counted. (Starts and stops waited on the lock on the loop, 250 ms
    each, and pushed the others' heartbeat p99 past 250 ms; the connection registry, the
    Pending charger and the deviation counts still did, and a charger connecting then
    was closed with 1011.)"""
    cp = ChargePoint.create(ident="CP-C", station=station)
    Connector.create(charge_point=cp, number=1)
    late = ChargePoint.create(ident="CP-D", station=station)
    Connector.create(charge_point=late, number=1)
    config.accept_unknown = True
    cs = CentralSystem(config, db)
    events: list = []
    cs.bus.subscribe(lambda e: e.kind == EventKind.STORE_TROUBLE and events.append(e))
    locked, finish, released = threading.Event(), threading.Event(), threading.Event()

    async def scenario() -> tuple[set, list, list[bool]]:
        loop = asyncio.get_running_loop()
        async with running(cs):
            meter = await RawCharger.connect(cs, "CP-A")
            beat = await RawCharger.connect(cs, "CP-B")
            starter = await RawCharger.connect(cs, "CP-C")
            await meter.boot()
            await beat.boot()
            await starter.boot()
            holder = threading.Thread(
                target=_hold_write_lock,
                args=(db_target, locked, finish, released),
                daemon=True,
            )
            holder.start()
            await loop.run_in_executor(None, locked.wait)
            stop = asyncio.Event()
            metering = asyncio.create_task(_meter_until(meter, stop, "1"))
            starting = asyncio.create_task(_start_stop_until(starter, stop))
            booting = asyncio.create_task(_boot_while_locked(cs, "CP-D", released))
            pending = asyncio.create_task(_boot_while_locked(cs, "CP-NEW", released))
            held: list[bool] = []  # each Heartbeat answered while the lock was still held
            until = loop.time() + LOCK_SECONDS
            while loop.time() < until:
                # an extra field: a deviation the tolerant reading counts, flushed each tick
                answer = await beat.call("Heartbeat", {"vendorExtra": 1})
                held.append(answer[0] == 3 and not released.is_set())
                await asyncio.sleep(0.05)
            finish.set()
            await loop.run_in_executor(None, holder.join)
            await asyncio.sleep(1.0)  # the store commits again
            stop.set()
            acknowledged, errors = await metering
            answered.extend(await starting)
            late_boots.extend(await asyncio.gather(booting, pending))
            await meter.close()
            await beat.close()
            await starter.close()
            return acknowledged, errors, held

    answered: list = []
    late_boots: list = []
    acknowledged, errors, held = run(scenario())
    assert held and all(held), held
    stored, refused = answered
    known, unknown = late_boots
    assert known["status"] == "Accepted" and known["heartbeat"] == 3, known
    assert unknown["status"] == "Pending" and unknown["heartbeat"] == 3, unknown
    assert set(known["closes"] + unknown["closes"]) <= {1013}, (known, unknown)
    new = ChargePoint.get(ChargePoint.ident == "CP-NEW")
    assert new.state == ChargePointState.PENDING.value
    assert ChargePoint.get(ChargePoint.ident == "CP-D").last_boot_at is not None
    assert sum(deviation_totals()["CP-B"].values()) == len(held)
    # Refused while locked (the charger keeps them), answered once stored, never in between.
    assert refused and all(a[1][2] == "InternalError" for a in refused), refused
    started = [a[1][2]["transactionId"] for a in stored if a[0] == "start"]
    stops = sum(1 for a in stored if a[0] == "stop")
    assert started and stops, stored
    rows = {tx.id: tx for tx in ChargingTransaction.select()}
    assert set(started) <= set(rows)  # every start answered is stored
    assert sum(1 for tx in rows.values() if tx.stopped_at is not None) >= stops
    assert errors and all(e == "InternalError" for e in errors), errors
    assert acknowledged and acknowledged <= _stored_values()
    assert [e.data["error"] is None for e in events] == [False, True]


def _hold_node_row(
    target: str,
    name: str,
    locked: threading.Event,
    finish: threading.Event,
    released: threading.Event,
) -> None:
    """Another connection locks this node's row (as a long write would) until told, or
    for at most 3 * LOCK_SECONDS."""
    with psycopg.connect(target) as other:
        other.execute("UPDATE node SET heartbeat_at = heartbeat_at WHERE name = %s", (name,))
        locked.set()
        finish.wait(3 * LOCK_SECONDS)
        other.rollback()
    released.set()


def _node_beat_waiting(target: str) -> bool:
    """Whether a session waits for a lock on the node table (this node's heartbeat)."""
    sql = (
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND query ILIKE '%\"node\"%' AND pid <> pg_backend_pid()"
    )
    with psycopg.connect(target) as conn:
        row = conn.execute(sql).fetchone()
    return bool(row and row[0])


@pytest.mark.parametrize("db_target", [BOTH_ENGINES[1]], indirect=True)
def test_node_heartbeat_waits_for_a_lock_off_the_loop(db, station, config: CsmsConfig, db_target):
    """The node's heartbeat on PostgreSQL ran on the event loop: a lock on its row held by
    another connection stopped every charger until it was gone. Now the beat waits on the
    node's own thread, and every Heartbeat of a charger is answered while it waits."""
    config.node_heartbeat_seconds = 0.1
    cs = CentralSystem(config, db)
    locked, finish, released = threading.Event(), threading.Event(), threading.Event()

    async def scenario() -> list[bool]:
        loop = asyncio.get_running_loop()
        async with running(cs):
            charger = await RawCharger.connect(cs, "CP-A")
            await charger.boot()
            holder = threading.Thread(
                target=_hold_node_row,
                args=(db_target, config.node, locked, finish, released),
                daemon=True,
            )
            holder.start()
            await loop.run_in_executor(None, locked.wait)
            for _ in range(100):  # the next beat comes within a tenth of a second
                if await loop.run_in_executor(None, _node_beat_waiting, db_target):
                    break
                await asyncio.sleep(0.1)
            held = []
            for _ in range(20):
                answer = await charger.call("Heartbeat", {})
                held.append(answer[0] == 3 and not released.is_set())
                await asyncio.sleep(0.05)
            held.append(await loop.run_in_executor(None, _node_beat_waiting, db_target))
            finish.set()
            await loop.run_in_executor(None, holder.join)
            assert (await charger.call("Heartbeat", {}))[0] == 3
            await charger.close()
            return held

    assert run(scenario(), timeout=120) == [True] * 21


@pytest.mark.parametrize(
    ("fault", "repair"),
    [
        ("PRAGMA max_page_count={pages}", "PRAGMA max_page_count=1073741823"),
        ("PRAGMA query_only=1", "PRAGMA query_only=0"),
    ],
    ids=["disk-full", "read-only"],
)
def test_store_that_cannot_commit(db, station, config: CsmsConfig, fault, repair):
    """With the disk full (200 samples acknowledged, 120 stored) or the file read-only,
    no sample was refused: now each is refused with InternalError until the store works."""
    cs = CentralSystem(config, db)
    events: list = []
    cs.bus.subscribe(lambda e: e.kind == EventKind.STORE_TROUBLE and events.append(e))

    def on_writer(sql: str) -> None:
        cs.writer._open()  # the writer's own connection: peewee keeps one per thread
        pages = cs.db.execute_sql("PRAGMA page_count").fetchone()[0]
        cs.db.execute_sql(sql.format(pages=pages))

    async def scenario() -> tuple[set, list, set, list]:
        loop = asyncio.get_running_loop()
        async with running(cs):
            charger = await RawCharger.connect(cs, "CP-A")
            await charger.boot()
            await loop.run_in_executor(cs.writer._executor, on_writer, fault)
            during: set[str] = set()
            refused: list[str] = []
            for seq in range(5000):  # a page with room left may still take a few rows
                value = f"2{seq:05d}"
                answer = await charger.call("MeterValues", meter_values(None, value))
                if answer[0] == 3:
                    during.add(value)
                else:
                    refused.append(answer[2])
                if len(refused) >= 10:
                    break
            await loop.run_in_executor(cs.writer._executor, on_writer, repair)
            stop = asyncio.Event()
            metering = asyncio.create_task(_meter_until(charger, stop, "3"))
            await asyncio.sleep(0.5)
            stop.set()
            after, later_errors = await metering
            await charger.close()
            return during, refused, after, later_errors

    during, refused, after, later_errors = run(scenario())
    assert len(refused) == 10 and set(refused) == {"InternalError"}
    assert after and not later_errors
    assert during | after <= _stored_values()
    assert events and events[0].data["error"] is not None and events[-1].data["error"] is None


def _headless(db_path: Path, stderr: Path) -> tuple[subprocess.Popen, int]:
    command = [sys.executable, "-m", "evcms_desktop", "--db", str(db_path), "--headless"]
    command += ["--host", "127.0.0.1", "--port", "0", "--security-profile", "0"]
    with stderr.open("w") as err:
        process = subprocess.Popen(command, stderr=err, env=dict(os.environ))
    for _ in range(600):
        match = re.search(r"listening on ws://127\.0\.0\.1:(\d+)/ocpp", stderr.read_text())
        if match:
            return process, int(match.group(1))
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"the headless system did not start: {stderr.read_text()[-2000:]}")


def test_store_files_made_immutable(db, station, db_path: Path, tmp_path: Path, can_make_immutable):
    """chattr +i on the database, its WAL and its shared-memory file under a running
    server: it died of SIGBUS (SQLite writes into its mapping of the shared-memory file)
    with nothing logged, after a misleading "cannot rollback - no transaction is active".
    Now each sample is refused with InternalError, the log names the file, the server
    lives on and stores again once the files are writable; stopped while they are not,
    it says so and ends without the crash."""
    db.close()  # the server runs in its own process, on the same file
    files = [db_path, *(db_path.with_name(db_path.name + end) for end in ("-wal", "-shm"))]
    process, port = _headless(db_path, tmp_path / "stderr.txt")

    async def answered(charger: RawCharger, tag: str, count: int) -> tuple[set, set]:
        acknowledged: set[str] = set()
        refused: set[str] = set()  # the error codes
        for seq in range(count):
            value = f"{tag}{seq:05d}"
            answer = await charger.call("MeterValues", meter_values(None, value))
            if answer[0] == 3:
                acknowledged.add(value)
            else:
                refused.add(answer[2])
            await asyncio.sleep(0.05)
        return acknowledged, refused

    async def scenario() -> dict:
        seen: dict = {}
        charger = await RawCharger.at(port, "CP-A")
        await charger.boot()
        seen["before"], _ = await answered(charger, "4", 10)
        chattr("+i", *files)
        try:
            seen["during"], seen["refusals"] = await answered(charger, "5", 20)
            await asyncio.sleep(6)  # past a timer tick of the server, which reads the store
            seen["heartbeat"] = (await charger.call("Heartbeat", {}))[0]
            seen["alive"] = process.poll() is None
        finally:
            chattr("-i", *files)
        await asyncio.sleep(1)  # the writer tries again every 0.5 s
        seen["after"], seen["later_refusals"] = await answered(charger, "6", 10)
        chattr("+i", *files)  # and stopped while it cannot be written
        await charger.close()
        return seen

    try:
        seen = run(scenario(), timeout=120)
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
    finally:
        chattr("-i", *files, check=False)
        if process.poll() is None:
            process.kill()
    log = (tmp_path / "evcms-desktop.log").read_text(encoding="utf-8")
    assert seen["alive"] and seen["heartbeat"] == 3, log[-3000:]
    assert not seen["during"] and seen["refusals"] == {"InternalError"}, seen
    assert seen["after"] and not seen["later_refusals"], seen
    names = ", ".join(map(str, files))
    assert f"The store cannot commit: {names} are not writable" in log, log[-3000:]
    assert "cannot rollback" not in log
    assert "Fatal Python error" not in log
    assert code == EXIT_STORE_UNWRITABLE and "ending without closing it" in log
    open_database(db_path)
    stored = _stored_values()
    assert seen["before"] | seen["after"] <= stored
    assert not {v for v in stored if v.startswith("5")}


def test_an_io_error_is_told_not_the_rollback_that_followed(tmp_path: Path, can_make_immutable):
    """When a write fails with an I/O error SQLite has rolled back already, and the
    writer said only "cannot rollback - no transaction is active". Here the WAL alone is
    made immutable, on a database without the store's own check (store.database
    refuses before SQLite is asked), so SQLite itself fails."""
    path = tmp_path / "plain.sqlite3"
    plain = peewee.SqliteDatabase(str(path), pragmas={"journal_mode": "wal"})
    plain.execute_sql("CREATE TABLE t (x INTEGER)")
    plain.execute_sql("INSERT INTO t VALUES (1)")  # the WAL exists from here
    writer = BatchWriter(plain, lock_timeout=0.1)
    wal = path.with_name(path.name + "-wal")

    async def scenario() -> str:
        writer.start()
        # The writer's connection has the WAL open before it becomes immutable: SQLite's
        # next write into it fails (EPERM), an I/O error.
        await writer.run(lambda: plain.execute_sql("INSERT INTO t VALUES (2)"), "first")
        chattr("+i", wal)
        try:
            await writer.run(lambda: plain.execute_sql("INSERT INTO t VALUES (2)"), "probe")
        except StoreUnavailable as refused:
            return str(refused)
        finally:
            chattr("-i", wal)
            await writer.stop()
        return "stored"

    said = run(scenario())
    plain.close()
    assert said == "disk I/O error", said


def test_a_handshake_while_the_store_is_immutable_is_refused_503(
    db, station, db_path: Path, config: CsmsConfig, can_make_immutable, caplog
):
    """A registered charger with the right password connecting while the store files are
    immutable got HTTP 500 and a 55-line traceback from the handshake's read on the loop."""
    charger_admin.set_password("CP-A", "a-good-password-1")
    config.security_profile = 1
    files = [db_path, *(db_path.with_name(db_path.name + end) for end in ("-wal", "-shm"))]
    cs = CentralSystem(config, db)
    token = base64.b64encode(b"CP-A:a-good-password-1").decode()

    async def scenario() -> tuple[int, str | None, int]:
        async with running(cs):
            chattr("+i", *files)
            try:
                with pytest.raises(InvalidStatus) as refused:
                    await raw_connect(
                        cs, "CP-A", additional_headers={"Authorization": f"Basic {token}"}
                    )
            finally:
                chattr("-i", *files)
            ws = await raw_connect(
                cs, "CP-A", additional_headers={"Authorization": f"Basic {token}"}
            )
            await ws.close()
            response = refused.value.response
            return response.status_code, response.headers.get("Retry-After"), 101

    with caplog.at_level(logging.INFO):
        status, retry_after, later = run(scenario())
    assert (status, retry_after, later) == (503, "5", 101)
    refusals = [r for r in caplog.records if "the store cannot be read" in r.getMessage()]
    assert len(refusals) == 1 and refusals[0].exc_info is None
    assert not [r for r in caplog.records if r.exc_info], "no traceback"


def test_registry_rows_not_stored_are_one_line_per_interval(
    db, station, config: CsmsConfig, db_target: str, caplog
):
    """While the store could not commit, `CPn connection registry not stored` was logged
    about once a second for every connected charger; now one line per interval names them."""
    config.refusal_interval_seconds = 2.0
    for i in range(5):
        Connector.create(
            charge_point=ChargePoint.create(ident=f"REG-{i}", station=station), number=1
        )
    cs = CentralSystem(config, db)
    locked, finish, released = threading.Event(), threading.Event(), threading.Event()

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        async with running(cs):
            holder = threading.Thread(
                target=_hold_write_lock, args=(db_target, locked, finish, released), daemon=True
            )
            holder.start()
            await loop.run_in_executor(None, locked.wait)
            chargers = [await RawCharger.connect(cs, f"REG-{i}") for i in range(5)]
            await asyncio.sleep(8.0)  # each registry row is tried again each second
            finish.set()
            await loop.run_in_executor(None, holder.join)
            for charger in chargers:
                await charger.close()

    with caplog.at_level(logging.INFO):
        run(scenario())
    lines = [
        r.getMessage() for r in caplog.records if "connection registry" in r.getMessage().lower()
    ]
    assert 2 <= len(lines) <= 5, lines  # at most one per 2 s
    assert all(any(f"REG-{i}" in line for line in lines) for i in range(5)), lines


def _hold_access_exclusive(
    target: str, locked: threading.Event, finish: threading.Event, released: threading.Event
) -> None:
    """Another session locks the written tables against reads too, until told."""
    with psycopg.connect(target) as other:
        other.execute(
            "LOCK TABLE meter_value, charging_transaction, connector, charge_point, event"
            " IN ACCESS EXCLUSIVE MODE"
        )
        locked.set()
        finish.wait(3 * LOCK_SECONDS)
        other.rollback()
    released.set()


@pytest.mark.parametrize("db_target", [BOTH_ENGINES[1]], indirect=True)
def test_a_handshake_that_cannot_be_checked_in_time_gets_503(
    db, station, config: CsmsConfig, db_target
):
    """With the tables locked ACCESS EXCLUSIVE, a new charger's handshake got no HTTP answer
    until the lock was gone (its charger lookup waited without a bound). Now it gets 503
    with Retry-After while the lock is held, and a connected charger is answered."""
    Connector.create(charge_point=ChargePoint.create(ident="CP-NEW", station=station), number=1)
    cs = CentralSystem(config, db)
    locked, finish, released = threading.Event(), threading.Event(), threading.Event()

    async def scenario() -> tuple[int, str | None, bool, bool]:
        loop = asyncio.get_running_loop()
        async with running(cs):
            charger = await RawCharger.connect(cs, "CP-A")
            await charger.boot()
            holder = threading.Thread(
                target=_hold_access_exclusive,
                args=(db_target, locked, finish, released),
                daemon=True,
            )
            holder.start()
            await loop.run_in_executor(None, locked.wait)
            with pytest.raises(InvalidStatus) as caught:
                await RawCharger.connect(cs, "CP-NEW")
            refused_while_held = not released.is_set()
            beat = await charger.call("Heartbeat", {})
            answered_while_held = beat[0] == 3 and not released.is_set()
            finish.set()
            await loop.run_in_executor(None, holder.join)
            await charger.close()
            response = caught.value.response
            return (
                response.status_code,
                response.headers.get("Retry-After"),
                refused_while_held,
                answered_while_held,
            )

    status, retry_after, refused_while_held, answered = run(scenario(), timeout=120)
    assert (status, retry_after) == (503, "5")
    assert refused_while_held and answered
