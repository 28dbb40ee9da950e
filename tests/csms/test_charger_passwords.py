"""Charger passwords under attack: checked off the loop in a bounded pool, unknown ids
checked like known ones, wrong passwords throttled per id and per address, then locked
out until the operator lifts it; old Argon2 hashes accepted and replaced; Pending capped.
All over real WebSocket connections on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import gc
import os
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from websockets.exceptions import InvalidStatus

from evcms_desktop.csms import charger_admin
from evcms_desktop.csms.charger_auth import FailureTable
from evcms_desktop.csms.events import EventKind
from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from evcms_desktop.simulator.chargebox import ChargeBox
from evcms_desktop.store.models import ChargePoint, ChargePointState, Station
from tests.conftest import NOW, other_connection_rows
from tests.csms.helpers import FakeClock, Recorder, raw_connect, run, running, url

PASSWORD = "correct-horse-battery"
WRONG = "wrong-horse-battery!"


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def attempt(cs: CentralSystem, ident: str, password: str) -> int:
    """The HTTP status of one handshake (101 when it got in)."""
    try:
        ws = await raw_connect(cs, ident, additional_headers=basic(ident, password))
    except InvalidStatus as exc:
        return exc.response.status_code
    await ws.close()
    return 101


@pytest.fixture
def throttled(config: CsmsConfig) -> CsmsConfig:
    config.security_profile = 1
    config.auth_free_failures = 2
    config.auth_lock_after = 4
    config.auth_address_factor = 3  # the address: 6 free, locked at 12
    return config


def test_wrong_passwords_wait_then_lock_out_until_unlocked(db, station, throttled, clock):
    charger_admin.set_password("CP-A", PASSWORD)
    cs = CentralSystem(throttled, db, clock=clock)
    recorder = Recorder(cs)

    async def scenario() -> None:
        async with running(cs):
            assert [await attempt(cs, "CP-A", WRONG) for _ in range(3)] == [401, 401, 401]
            # The third failure was past the free ones: the next try must wait 1 s,
            # even with the right password, and it is not checked.
            with pytest.raises(InvalidStatus) as caught:
                await raw_connect(cs, "CP-A", additional_headers=basic("CP-A", PASSWORD))
            assert caught.value.response.status_code == 429
            assert caught.value.response.headers["Retry-After"] == "1"
            clock.advance(seconds=1)
            assert await attempt(cs, "CP-A", WRONG) == 401  # the fourth: locked out
            assert recorder.of(EventKind.CHARGER_LOCKED_OUT)[-1].charge_point == "CP-A"
            info = next(i for i in charger_admin.list_chargers() if i.ident == "CP-A")
            assert info.locked_until == NOW + timedelta(seconds=1, minutes=30)
            clock.advance(minutes=10)
            assert await attempt(cs, "CP-A", PASSWORD) == 429
            assert charger_admin.unlock("CP-A")
            assert await attempt(cs, "CP-A", PASSWORD) == 101
            # Lifted means counted from zero again, not locked at the next mistake.
            assert await attempt(cs, "CP-A", WRONG) == 401
            assert await attempt(cs, "CP-A", PASSWORD) == 101

    run(scenario())


async def attempt_from(cs: CentralSystem, source: str, ident: str, password: str) -> int:
    """The HTTP status of one handshake made from the loopback address `source`."""
    try:
        ws = await raw_connect(
            cs, ident, additional_headers=basic(ident, password), local_addr=(source, 0)
        )
    except InvalidStatus as exc:
        return exc.response.status_code
    await ws.close()
    return 101


def test_wrong_passwords_from_elsewhere_lock_out_the_guesser_not_the_charger(
    db, station, throttled, clock
):
    """Someone who knows CP-A's id guesses from another address until locked out, and
    goes on: the real CP-A, from its own address, still gets in and boots; the guesser's
    address stays refused, also for its right password, until the operator lifts it."""
    charger_admin.set_password("CP-A", PASSWORD)
    cs = CentralSystem(throttled, db, clock=clock)
    recorder = Recorder(cs)

    async def scenario() -> None:
        async with running(cs):
            statuses = []
            for _ in range(30):
                statuses.append(await attempt_from(cs, "127.0.0.2", "CP-A", WRONG))
                clock.advance(seconds=2)  # past each short delay
            assert statuses[:4] == [401] * 4 and set(statuses[4:]) == {429}
            event = recorder.of(EventKind.CHARGER_LOCKED_OUT)[-1]
            assert event.charge_point == "CP-A" and event.data["address"] == "127.0.0.2"
            info = next(i for i in charger_admin.list_chargers() if i.ident == "CP-A")
            assert info.locked_until is not None  # the operator sees it
            box = ChargeBox("CP-A", url(cs), password=PASSWORD)
            await box.connect()
            assert await box.boot() == "Accepted"
            await box.close()
            assert await attempt_from(cs, "127.0.0.2", "CP-A", PASSWORD) == 429
            assert await attempt_from(cs, "127.0.0.2", "CP-B", WRONG) == 401  # another id
            assert charger_admin.unlock("CP-A")
            assert await attempt_from(cs, "127.0.0.2", "CP-A", PASSWORD) == 101

    run(scenario())


async def evcms(db_target: str, *args: str) -> tuple[int, str]:
    """The command line in its own process, as an operator runs it beside the server."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "evcms_desktop",
        "--db",
        str(db_target),
        *args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


def test_operator_sees_and_lifts_a_lockout_from_the_command_line(db, db_target, station, throttled):
    charger_admin.set_password("CP-A", PASSWORD)
    throttled.auth_free_failures = 10
    throttled.auth_lock_after = 2
    cs = CentralSystem(throttled, db)

    async def scenario() -> None:
        async with running(cs):
            assert [await attempt(cs, "CP-A", WRONG) for _ in range(2)] == [401, 401]
            assert await attempt(cs, "CP-A", PASSWORD) == 429
            code, out = await evcms(db_target, "chargers", "list")
            [line] = [row for row in out.splitlines() if row.startswith("CP-A ")]
            assert code == 0 and "LOCKED OUT until" in line, out
            assert await evcms(db_target, "chargers", "unlock", "CP-A") == (
                0,
                "Unlocked CP-A; its next login is checked again.\n",
            )
            assert await attempt(cs, "CP-A", PASSWORD) == 101
            code, out = await evcms(db_target, "chargers", "list")
            assert "LOCKED" not in out
            assert await evcms(db_target, "chargers", "unlock", "CP-A") == (
                0,
                "CP-A was not locked out.\n",
            )

    run(scenario(), timeout=120)


def test_lockout_survives_a_restart_and_ends_by_itself(db, station, throttled, clock):
    charger_admin.set_password("CP-A", PASSWORD)
    throttled.auth_free_failures = 10  # no delays: straight to the lockout
    cs = CentralSystem(throttled, db, clock=clock)

    async def scenario() -> None:
        async with running(cs):
            for _ in range(4):
                assert await attempt(cs, "CP-A", WRONG) == 401
            assert await attempt(cs, "CP-A", PASSWORD) == 429
        again = CentralSystem(throttled, db, clock=clock)
        async with running(again):
            assert await attempt(again, "CP-A", PASSWORD) == 429
            clock.advance(minutes=31)
            assert await attempt(again, "CP-A", PASSWORD) == 101

    run(scenario())


def test_one_address_guessing_many_ids_is_locked_out(db, station, throttled, clock):
    """Unknown ids count against the address they come from; once it is locked out, a
    known charger's right password from there waits too."""
    charger_admin.set_password("CP-A", PASSWORD)
    throttled.auth_free_failures = 10  # no delays
    throttled.auth_address_factor = 1  # the address is locked at 4 failures, as an id is
    cs = CentralSystem(throttled, db, clock=clock)
    recorder = Recorder(cs)

    async def scenario() -> None:
        async with running(cs):
            statuses = [await attempt(cs, f"GUESS-{i}", PASSWORD) for i in range(4)]
            assert statuses == [401] * 4
            assert await attempt(cs, "CP-A", PASSWORD) == 429
            event = recorder.of(EventKind.CHARGER_LOCKED_OUT)[-1]
            assert event.data["address"] == "127.0.0.1"
            clock.advance(minutes=31)
            assert await attempt(cs, "CP-A", PASSWORD) == 101

    run(scenario())


def test_unknown_ids_are_checked_like_known_ones(db, station, throttled, monkeypatch):
    """The same kind of verification runs for an unknown id as for a known one, so the
    answer's time does not tell which ids exist."""
    charger_admin.set_password("CP-A", PASSWORD)
    checked: list[str] = []
    verify = charger_admin.verify_password

    def spy(password_hash: str | None, password: str) -> bool:
        checked.append((password_hash or "").split("$")[0])
        return verify(password_hash, password)

    monkeypatch.setattr(charger_admin, "verify_password", spy)
    cs = CentralSystem(throttled, db)

    async def scenario() -> None:
        async with running(cs):
            assert await attempt(cs, "CP-A", WRONG) == 401
            assert await attempt(cs, "CP-NOBODY", WRONG) == 401

    run(scenario())
    assert checked == [charger_admin.PBKDF2_SCHEME] * 2


def test_passwords_are_checked_off_the_loop_a_few_at_a_time(db, station, throttled, monkeypatch):
    throttled.password_checks = 2
    throttled.auth_free_failures = 100
    for i in range(8):
        charger_admin.add_charger(f"CP-{i}", PASSWORD, station)
    lock = threading.Lock()
    active, most, threads = 0, 0, set()
    verify = charger_admin.verify_password

    def slow(password_hash: str | None, password: str) -> bool:
        nonlocal active, most
        with lock:
            active += 1
            most = max(most, active)
            threads.add(threading.current_thread().name)
        time.sleep(0.05)  # long enough for the other handshakes to queue up
        with lock:
            active -= 1
        return verify(password_hash, password)

    monkeypatch.setattr(charger_admin, "verify_password", slow)
    cs = CentralSystem(throttled, db)

    async def scenario() -> list[int]:
        async with running(cs):
            return await asyncio.gather(*(attempt(cs, f"CP-{i}", PASSWORD) for i in range(8)))

    assert run(scenario()) == [101] * 8
    assert most == 2
    assert all(name.startswith("password-check") for name in threads)


def _store_connections(db_target: str) -> int:
    """The store's connections held now: this process's open handles of the SQLite
    files, or PostgreSQL's sessions of the database (this test's only user)."""
    if db_target.startswith("postgresql://"):
        sql = (
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return int(other_connection_rows(db_target, sql)[0][0])
    path = str(Path(db_target).resolve())
    held = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            held += os.readlink(f"/proc/self/fd/{fd}").startswith(path)  # with -wal, -shm
        except OSError:
            continue  # closed meanwhile (listdir's own handle)
    return held


def test_password_checks_close_their_store_connections_at_stop(db, db_target, station, throttled):
    """Each check thread has its own store connection; they were left to the garbage
    collector, so every start and stop left two more open."""
    charger_admin.set_password("CP-A", PASSWORD)
    counts = []
    gc.disable()  # what is closed is closed by the central system, not by a collection
    try:
        for _ in range(5):
            cs = CentralSystem(throttled, db)

            async def scenario(cs: CentralSystem = cs) -> list[int]:
                async with running(cs):
                    return await asyncio.gather(*(attempt(cs, "CP-A", PASSWORD) for _ in range(4)))

            assert run(scenario()) == [101] * 4
            counts.append(_store_connections(db_target))
    finally:
        gc.enable()
    assert counts == [counts[0]] * 5, counts


def test_an_argon2_hash_is_accepted_once_and_replaced(db, station, throttled):
    old = PasswordHasher().hash(PASSWORD)
    ChargePoint.update(password_hash=old).where(ChargePoint.ident == "CP-A").execute()
    cs = CentralSystem(throttled, db)

    async def scenario() -> None:
        async with running(cs):
            assert await attempt(cs, "CP-A", WRONG) == 401
            assert ChargePoint.get(ChargePoint.ident == "CP-A").password_hash == old
            assert await attempt(cs, "CP-A", PASSWORD) == 101
            new = ChargePoint.get(ChargePoint.ident == "CP-A").password_hash
            assert new.startswith(f"{charger_admin.PBKDF2_SCHEME}$")
            assert not charger_admin.needs_rehash(new)
            assert await attempt(cs, "CP-A", PASSWORD) == 101
            assert await attempt(cs, "CP-A", WRONG) == 401

    run(scenario())


def test_pending_chargers_are_capped(db, station, throttled, caplog):
    throttled.accept_unknown = True
    throttled.max_pending = 2
    cs = CentralSystem(throttled, db)

    async def scenario() -> list[int]:
        async with running(cs):
            statuses = []
            for ident in ["NEW-1", "NEW-2", "NEW-3", "NEW-3", "NEW-4"]:
                box = ChargeBox(ident, url(cs), password=PASSWORD)
                try:
                    await box.connect()
                except InvalidStatus as exc:
                    statuses.append(exc.response.status_code)
                    continue
                assert await box.boot() == "Pending"
                await box.close()
                statuses.append(101)
            return statuses

    assert run(scenario()) == [101, 101, 401, 401, 401]
    pending = ChargePoint.select().where(ChargePoint.state == ChargePointState.PENDING)
    assert sorted(cp.ident for cp in pending) == ["NEW-1", "NEW-2"]
    assert "chargers wait for approval already" in caplog.text
    charger_admin.approve("NEW-1", Station.get())
    assert charger_admin.create_pending("NEW-3", None, throttled.max_pending).ident == "NEW-3"
    with pytest.raises(charger_admin.ChargerAdminError):
        charger_admin.create_pending("NEW-4", None, throttled.max_pending)


def test_a_pending_charger_is_recorded_while_another_writer_commits(db, db_target, station):
    """The count and the insert are one write transaction from the start: a deferred one
    read a snapshot that another writer's commit made stale, and SQLite refused its insert
    at once ("database is locked"), closing the charger's connection with 1011."""
    if db_target.startswith("postgresql://"):
        pytest.skip("SQLite's snapshot rule")
    other = sqlite3.connect(db_target, timeout=10)
    other.execute("BEGIN IMMEDIATE")
    other.execute("UPDATE station SET name = name")
    outcome: list[object] = []

    def record() -> None:
        try:
            outcome.append(charger_admin.create_pending("NEW-1", None, 10).ident)
        except Exception as exc:  # what the old code raised, kept for the assertion
            outcome.append(exc)

    worker = threading.Thread(target=record)
    worker.start()
    time.sleep(0.5)  # the worker is waiting for the write lock
    other.commit()
    other.close()
    worker.join(timeout=20)
    assert outcome == ["NEW-1"]


def test_failure_tables_stay_bounded_and_forget():
    clock = FakeClock(NOW)
    table = FailureTable(
        free=1,
        lock_after=3,
        max_delay=timedelta(seconds=60),
        lockout=timedelta(minutes=30),
        forget_after=timedelta(minutes=15),
        capacity=100,
    )
    for i in range(1_000):
        table.failed(f"10.0.{i // 256}.{i % 256}", clock())
    assert len(table) == 100
    entry = table.failed("10.9.9.9", clock())
    assert entry.retry_at is None  # the first failure is free
    table.failed("10.9.9.9", clock())
    assert table.retry_at("10.9.9.9", clock()) == NOW + timedelta(seconds=1)
    clock.advance(minutes=16)
    assert table.get("10.9.9.9", clock()) is None
    table.failed("10.8.8.8", clock())
    assert len(table) == 1  # the stale ones went with it


def test_password_hash_round_trip_and_bad_hashes():
    stored = charger_admin.hash_password(PASSWORD)
    assert charger_admin.verify_password(stored, PASSWORD)
    assert not charger_admin.verify_password(stored, WRONG)
    assert stored != charger_admin.hash_password(PASSWORD)  # salted
    bad: list[Any] = [None, "", "pbkdf2-sha256$x$y$z", "pbkdf2-sha256$99999999$AA==$AA==", "$"]
    assert not any(charger_admin.verify_password(h, PASSWORD) for h in bad)
    assert charger_admin.needs_rehash(PasswordHasher().hash(PASSWORD))
