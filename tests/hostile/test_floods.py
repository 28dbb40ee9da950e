"""Floods of answers to no call and of CALLs: both draw on the charger's rate limit, end
with close code 1008 soon after a burst's worth of refusals, and leave a few log lines."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from websockets.exceptions import ConnectionClosed

from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from tests.csms.helpers import running
from tests.hostile.helpers import RawCharger, run

FLOOD = 3_000
MAX_LINES = 20


def _result(i: int) -> str:
    return json.dumps([3, f"r{i}", {}])


def _error(i: int) -> str:
    return json.dumps([4, f"e{i}", "InternalError", "x", {}])


def _heartbeat(i: int) -> str:
    return json.dumps([2, f"h{i}", "Heartbeat", {}])


async def _flood(charger: RawCharger, frame) -> tuple[int | None, list[object]]:
    """Send FLOOD frames without waiting, then read until the server closes: the close
    code (None if it never closed) and every answer read."""
    answers: list[object] = []

    async def read() -> None:
        async for message in charger.ws:
            answers.append(json.loads(message))

    reader = asyncio.create_task(read())
    try:
        for i in range(FLOOD):
            await charger.ws.send(frame(i))
        await asyncio.wait_for(reader, 5)
    except ConnectionClosed:
        pass
    except TimeoutError:
        return None, answers
    return charger.ws.close_code, answers


def _scenario(db, config: CsmsConfig, frame) -> tuple[int | None, list[object]]:
    config.rate_per_second = 20
    config.rate_burst = 60
    cs = CentralSystem(config, db)

    async def scenario() -> tuple[int | None, list[object]]:
        async with running(cs):
            flooder = await RawCharger.connect(cs, "CP-A")
            await flooder.boot()
            return await _flood(flooder, frame)

    return run(scenario())


@pytest.mark.parametrize("frame", [_result, _error], ids=["callresult", "callerror"])
def test_answers_to_no_call_are_rate_limited_and_logged_in_counts(
    db, station, config: CsmsConfig, frame, caplog: pytest.LogCaptureFixture
):
    """25,980 unsolicited CALLRESULTs in 3 s were never limited and each logged a line."""
    caplog.set_level(logging.INFO)
    code, _ = _scenario(db, config, frame)
    assert code == 1008
    lines = [r for r in caplog.records if "CP-A" in r.getMessage()]
    assert len(lines) <= MAX_LINES, len(lines)


def test_a_call_flood_is_closed_after_a_burst_of_refusals(db, station, config: CsmsConfig):
    """27,966 Heartbeats in 3 s got 749 SecurityErrors before the close; a burst's worth
    (60) refused in a row disconnects."""
    code, answers = _scenario(db, config, _heartbeat)
    assert code == 1008
    refused = [a for a in answers if isinstance(a, list) and a[0] == 4]
    assert all(a[2] == "SecurityError" for a in refused), refused[:3]
    assert len(refused) <= config.rate_burst + 5, len(refused)
