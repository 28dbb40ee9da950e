"""Bounded storage and logs: a flooding charger adds a bounded number of Event rows and log
lines, is disconnected with 1008 and refused for a cool-down, while the others are still
answered; old events are pruned, new ones kept."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import timedelta

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from evcms_desktop.store.models import Event
from tests.conftest import NOW
from tests.csms.helpers import FakeClock, running
from tests.hostile.helpers import RawCharger, run

FLOOD = 3_000
MAX_ROWS = 20  # first refusals, one count per interval, the disconnect, connect/boot


def _heartbeat(i: int) -> str:
    return json.dumps([2, f"f{i}", "Heartbeat", {}])


def _malformed(i: int) -> str:
    return f"not json {i}\n2026-12-01 FORGED ERROR line"


async def _flood(charger: RawCharger, frame) -> int | None:
    """Send FLOOD frames without waiting for answers, then read until the server closes;
    the close code, or None if it never closed."""
    try:
        for i in range(FLOOD):
            await charger.ws.send(frame(i))
        while True:
            await asyncio.wait_for(charger.ws.recv(), 10)
    except ConnectionClosed:
        return charger.ws.close_code
    except TimeoutError:
        return None


@pytest.mark.parametrize("frame", [_heartbeat, _malformed], ids=["heartbeat", "malformed"])
def test_flooder_is_bounded_and_disconnected(
    db, station, config: CsmsConfig, frame, caplog: pytest.LogCaptureFixture
):
    """One Heartbeat flooder for 10 s left 173,468 Event rows; 40,000 malformed frames were
    not rate-limited at all. Now either flood adds a bounded number of rows and log lines,
    ends with close code 1008 and a refused reconnect, and the other charger is answered."""
    config.rate_per_second = 20
    config.rate_burst = 60
    cs = CentralSystem(config, db)
    caplog.set_level(logging.INFO)

    async def scenario() -> tuple[int | None, list[float], int]:
        async with running(cs):
            quiet = await RawCharger.connect(cs, "CP-B")
            flooder = await RawCharger.connect(cs, "CP-A")
            await quiet.boot()
            await flooder.boot()
            await cs.writer.flush()
            before = Event.select().count()
            flood = asyncio.create_task(_flood(flooder, frame))
            rtts: list[float] = []
            while not flood.done():
                started = time.perf_counter()
                answer = await quiet.call("Heartbeat", {})
                assert answer[0] == 3, answer
                rtts.append(time.perf_counter() - started)
                await asyncio.sleep(0.1)  # well within its own rate
            code = await flood
            with pytest.raises(InvalidStatus) as refused:
                await RawCharger.connect(cs, "CP-A")
            assert refused.value.response.status_code == 429
            assert (await quiet.call("Heartbeat", {}))[0] == 3
            await quiet.close()
            await cs.writer.flush()
            return code, rtts, Event.select().count() - before

    code, rtts, new_rows = run(scenario())
    assert code == 1008
    assert rtts
    assert new_rows <= MAX_ROWS, f"{new_rows} Event rows for {FLOOD} frames"
    flooder_lines = [r for r in caplog.records if "CP-A" in r.getMessage()]
    assert len(flooder_lines) <= MAX_ROWS, len(flooder_lines)
    assert not any(r.getMessage().startswith("2026-12-01 FORGED") for r in caplog.records)
    assert all("\n" not in r.getMessage() for r in caplog.records)


def test_refusals_in_an_interval_are_counted_in_one_event(db, station, config: CsmsConfig):
    """Schema refusals below the rate limit: the first few are listed, the rest counted in
    one event when the interval ends (before, each was its own Event row)."""
    config.report_interval_seconds = 0.5
    config.reports_per_interval = 3
    cs = CentralSystem(config, db)

    async def scenario() -> list[str]:
        async with running(cs):
            charger = await RawCharger.connect(cs, "CP-A")
            await charger.boot()
            for _ in range(40):
                answer = await charger.call("StatusNotification", {"connectorId": 1})
                assert answer[0] == 4, answer
            await asyncio.sleep(0.8)  # the interval ends: the count is published
            await charger.close()
            await cs.writer.flush()
            return [
                e.message
                for e in Event.select().where(Event.kind == "protocol_error").order_by(Event.id)
            ]

    messages = run(scenario())
    assert len(messages) == 4, messages
    assert "37 more refusals" in messages[-1] and "ProtocolError x37" in messages[-1]


def test_old_events_are_pruned_and_new_ones_kept(db, station, config: CsmsConfig):
    """Nothing pruned events; now those older than the retention go, in batches."""
    clock = FakeClock(NOW)
    config.event_retention_days = 90
    cs = CentralSystem(config, db, clock=clock)
    old = [
        {"timestamp": NOW - timedelta(days=91, minutes=i), "kind": "charger_booted", "message": "o"}
        for i in range(12_000)
    ]
    new = [
        {"timestamp": NOW - timedelta(days=89), "kind": "charger_booted", "message": "n"},
        {"timestamp": NOW, "kind": "charger_booted", "message": "n"},
    ]
    with db.atomic():
        for first in range(0, len(old), 1000):
            Event.insert_many(old[first : first + 1000]).execute()
        Event.insert_many(new).execute()

    async def scenario() -> None:
        async with running(cs):
            await cs.prune_events()  # beside the one at start; both in the writer's thread

    run(scenario())
    assert [e.message for e in Event.select()] == ["n", "n"]
