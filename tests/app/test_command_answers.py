"""What the command line answers: plans without booking, a moved arrival said aloud, no log
noise on success, a refused charger explained, the headless log without repeats."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import websockets

from evcms_desktop.app.admin_commands import _log_event
from evcms_desktop.csms.events import EventBus, EventKind, Publisher
from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from evcms_desktop.simulator.cli import build_parser, run_fleet
from evcms_desktop.store.models import Booking
from tests.csms.helpers import run, running, url


@pytest.fixture
def config(tmp_path) -> CsmsConfig:
    return CsmsConfig(data_dir=tmp_path, port=0, probe_features=False)


def _cli(db_path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "evcms_desktop", "--db", str(db_path), *args],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def _next_weekday() -> str:
    day = datetime.now(UTC).date() + timedelta(days=2)
    while day.weekday() >= 5:  # Peak On 08:00-11:00 on weekdays
        day += timedelta(days=1)
    return day.isoformat()


BOOK = ["book", "--arrival", "08:15", "--duration", "60", "--energy", "17.6"]


def test_a_dry_run_shows_the_plans_and_books_nothing(db_path, station):
    result = _cli(db_path, *BOOK, "--date", _next_weekday(), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "Plans for" in result.stdout
    assert result.stdout.strip().endswith("Dry run: nothing was booked.")
    assert result.stderr == ""
    assert Booking.select().count() == 0


def test_the_cheapest_plan_moving_the_arrival_is_said_and_nothing_is_logged(db_path, station):
    result = _cli(db_path, *BOOK, "--date", _next_weekday())
    assert result.returncode == 0, result.stderr
    assert "The cheapest plan moves the arrival from 08:15 to " in result.stdout
    assert "--plan 1 keeps 08:15." in result.stdout
    assert result.stderr == ""  # a successful command prints no INFO line
    assert Booking.select().count() == 1


def test_a_refused_fleet_says_why_and_what_to_do(config, db, station, caplog):
    async def go() -> int:
        cs = CentralSystem(config, db)
        async with running(cs):
            args = build_parser().parse_args(
                ["--url", url(cs), "--id", "SIM", "--count", "3", "--duration", "0.1"]
            )
            return await run_fleet(args)

    with caplog.at_level(logging.ERROR):
        assert run(go()) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [
        "3 chargers (SIM-1 …) could not start: HTTP 404: unknown charger (add it with"
        " `evcms-desktop chargers add ID`, or let the server take unknown chargers as"
        " Pending with --accept-unknown)"
    ]


@pytest.mark.parametrize("kind", [EventKind.CHARGER_CONNECTED, EventKind.CHARGER_BOOTED])
def test_the_headless_log_prints_each_event_once(caplog, kind):
    bus = EventBus()
    bus.subscribe(_log_event)
    publish = Publisher(bus, lambda: datetime.now(UTC))
    with caplog.at_level(logging.INFO):
        publish(kind, "CP-9 says hello", "CP-9")
    assert sum("CP-9 says hello" in r.getMessage() for r in caplog.records) == 1


def test_sessions_prints_the_store_health(db, db_path, station, config: CsmsConfig, capsys):
    """`sessions` says whether the store had trouble: rows set aside, the last time the
    central system could not commit."""
    from evcms_desktop.app.cli import main
    from evcms_desktop.store.models import MeterValue, utcnow

    assert main(["--db", str(db_path), "sessions"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "Store:" not in out  # nothing to say: the listing alone
    cs = CentralSystem(config, db)

    async def scenario() -> None:
        async with running(cs):
            refused = {"charge_point": 987_654, "connector_number": 1, "transaction": None,
                       "timestamp": utcnow(), "measurand": "Energy.Active.Import.Register",
                       "value": "1", "unit": "Wh", "phase": None, "context": None,
                       "location": None}  # fmt: skip
            cs.writer.add(MeterValue, refused, origin="test")
            await cs.writer.flush()
            other = sqlite3.connect(db_path, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")  # past the writer's 2 s bound
            cs.writer.seen(1, utcnow())
            while cs.store_error is None:
                await asyncio.sleep(0.05)
            other.execute("COMMIT")
            other.close()
            while cs.store_error is not None:
                await asyncio.sleep(0.05)
            await cs.writer.flush()

    run(scenario())
    assert main(["--db", str(db_path), "sessions"]) == 0
    out, err = capsys.readouterr()
    assert "Store:" not in out
    health = err.splitlines()[0]
    assert health.startswith("Store: 1 row(s) set aside in ")
    assert "last could not commit at " in health and "database is locked" in health
    assert ", committed again at " in health  # it recovered, and says when


def test_sessions_marks_a_session_flagged_for_review(db, db_path, station, capsys):
    """A session flagged for review showed nothing of it, and "not billed" beside a bill."""
    from evcms_desktop.app.cli import main
    from evcms_desktop.store.models import ChargePoint, ChargingTransaction

    cp = ChargePoint.get(ChargePoint.ident == "CP-A")
    started = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    why = "meterStop 1000000000000 Wh is outside 0..10000000000; no energy billed"
    flagged, plain = (
        ChargingTransaction.create(
            charge_point=cp, connector_number=number, id_tag="TAG", meter_start_wh=0,
            meter_stop_wh=1000, energy_kwh="0.000", price_total="1.70", started_at=started,
            stopped_at=started + timedelta(hours=1), state="finished", review=review,
        )
        for number, review in ((1, why), (2, None))
    )  # fmt: skip
    assert main(["--db", str(db_path), "sessions"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert lines[f"#{flagged.id}"].endswith(f"REVIEW: {why}")
    assert "REVIEW" not in lines[f"#{plain.id}"]


def test_sessions_shows_the_stop_date_when_it_is_not_the_start_day(db, db_path, station, capsys):
    """A session stopped days later was shown as "17:00-17:00", hiding the dates."""
    from evcms_desktop.app.cli import main
    from evcms_desktop.store.models import ChargePoint, ChargingTransaction

    cp = ChargePoint.get(ChargePoint.ident == "CP-A")
    started = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    for number, stopped in ((1, started + timedelta(hours=2)), (2, started + timedelta(days=365))):
        ChargingTransaction.create(
            charge_point=cp, connector_number=number, id_tag="TAG", meter_start_wh=0,
            meter_stop_wh=1000, energy_kwh="1.000", started_at=started, stopped_at=stopped,
            state="finished",
        )  # fmt: skip
    assert main(["--db", str(db_path), "sessions"]) == 0
    out = capsys.readouterr().out
    assert "2026-12-01 12:00-2027-12-01 12:00" in out
    assert "2026-12-01 12:00-14:00" in out


def test_while_the_store_cannot_commit_the_commands_say_so(
    db, db_path, station, config: CsmsConfig
):
    """With another process holding the write lock, `sessions` said an earlier episode was
    over ("committed again at") and `chargers list` called the connected chargers offline:
    the trouble and the registry rows could not be written into the failing store."""
    from evcms_desktop.csms.health_file import current_troubles
    from evcms_desktop.store.models import ChargePoint, Connector, utcnow

    tmp = config.data_dir
    Connector.create(charge_point=ChargePoint.create(ident="CP-ON", station=station), number=1)
    config.tick_seconds = 0.2
    cs = CentralSystem(config, db)

    async def locked_for_a_while() -> None:
        other = sqlite3.connect(db_path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # past the writer's 2 s bound
        cs.writer.seen(1, utcnow())
        while cs.store_error is None:
            await asyncio.sleep(0.05)
        return other

    async def scenario() -> tuple[str, str]:
        loop = asyncio.get_running_loop()
        async with running(cs):
            other = await locked_for_a_while()  # an earlier episode, over
            other.execute("COMMIT")
            other.close()
            while cs.store_error is not None:
                await asyncio.sleep(0.05)
            await cs.writer.flush()
            other = await locked_for_a_while()
            async with websockets.connect(f"{url(cs)}/CP-ON", subprotocols=["ocpp1.6"]):
                while "CP-ON" not in cs.listener.sessions:
                    await asyncio.sleep(0.05)
                while not any("CP-ON" in t.connected for t in current_troubles(tmp)):
                    await asyncio.sleep(0.05)  # the next tick writes it in the health file
                sessions = await loop.run_in_executor(None, _cli, db_path, "sessions")
                chargers = await loop.run_in_executor(None, _cli, db_path, "chargers", "list")
            other.execute("COMMIT")
            other.close()
            return sessions.stderr, chargers.stdout

    health, listing = run(scenario())
    assert "Store: cannot commit since " in health and "database is locked" in health, health
    assert "committed again" not in health, health
    line = next(line for line in listing.splitlines() if line.startswith("CP-ON"))
    assert " online " in line, listing
