"""The simulator checks a configuration value before it takes it, as a real charger does:
ChangeConfiguration of a value its key cannot hold is Rejected and the old value stays, and
a BootNotification interval that is not a heartbeat interval is not taken."""

from __future__ import annotations

import json
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from evcms_desktop.csms.protocol import SUBPROTOCOL
from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from evcms_desktop.simulator.chargebox import ChargeBox
from evcms_desktop.store.models import MeterValue
from tests.conftest import NOW
from tests.csms.helpers import FakeClock, book, run, running, until, url

REFUSED = [
    ("HeartbeatInterval", "abc"),
    ("HeartbeatInterval", "0"),
    ("HeartbeatInterval", "-5"),
    ("HeartbeatInterval", "1.5"),
    ("HeartbeatInterval", "86401"),
    ("HeartbeatInterval", "9" * 400),
    ("HeartbeatInterval", "٣٠"),  # digits, but not ASCII ones
    ("MeterValueSampleInterval", "abc"),
    ("MeterValueSampleInterval", "-1"),
    ("MeterValueSampleInterval", "0"),  # no samples at all
    ("MeterValueSampleInterval", "2.5"),
    ("MeterValueSampleInterval", "3601"),
    ("MeterValueSampleInterval", "86400"),
    ("MeterValueSampleInterval", ""),
    ("AuthorizeRemoteTxRequests", "maybe"),
]


def test_change_configuration_rejects_what_a_key_cannot_hold(db, station, tmp_path):
    config = CsmsConfig(data_dir=tmp_path, port=0, tick_seconds=0.05, probe_features=False)
    cs = CentralSystem(config, db)

    async def scenario() -> tuple[list[str], list[str], dict[str, str]]:
        async with running(cs):
            box = ChargeBox("CP-A", url(cs), meter_interval=3600)
            await box.connect()
            assert await box.boot() == "Accepted"
            before = {k: v for k, (v, _) in box.configuration.items()}
            refused = [
                (await cs.commands.change_configuration("CP-A", key, value)).status
                for key, value in REFUSED
            ]
            kept = {k: v for k, (v, _) in box.configuration.items()}
            assert kept == before
            taken = [
                (await cs.commands.change_configuration("CP-A", key, value)).status
                for key, value in [
                    ("HeartbeatInterval", "120"),
                    ("MeterValueSampleInterval", "30"),
                    ("AuthorizeRemoteTxRequests", "false"),
                ]
            ]
            answer = await cs.commands.get_configuration("CP-A", ["HeartbeatInterval"])
            await box.close()
            values = {k["key"]: k["value"] for k in answer.payload["configurationKey"]}
            return refused, taken, values

    refused, taken, values = run(scenario())
    assert refused == ["Rejected"] * len(REFUSED)
    assert taken == ["Accepted"] * 3
    assert values == {"HeartbeatInterval": "120"}


def test_a_new_meter_value_sample_interval_takes_effect_at_once(db, station, tmp_path):
    """ChangeConfiguration of MeterValueSampleInterval was Accepted, but the simulator went
    on waiting out its old interval: a session metering hourly now sends a sample a second
    from the change on, over a real WebSocket to the real central system."""
    clock = FakeClock(NOW)
    config = CsmsConfig(data_dir=tmp_path, port=0, tick_seconds=0.05, probe_features=False)
    cs = CentralSystem(config, db, clock=clock)

    def stored(tx_id: int) -> int:
        return MeterValue.select().where(MeterValue.transaction == tx_id).count()

    async def scenario() -> tuple[str, str, float]:
        async with running(cs):
            box = ChargeBox("CP-A", url(cs), clock=clock, meter_interval=3600)
            await box.connect()
            assert await box.boot() == "Accepted"
            tx_id, status = await box.charge(book(db, station, clock, minutes=60).code)
            assert status == "Accepted" and stored(tx_id) == 0
            change = cs.commands.change_configuration
            answer = await change("CP-A", "MeterValueSampleInterval", "1")
            await until(lambda: stored(tx_id) >= 3, timeout=20)  # an hour on the old code
            shown = await cs.commands.get_configuration("CP-A", ["MeterValueSampleInterval"])
            await box.stop_transaction(tx_id)
            await box.close()
            return answer.status, shown.payload["configurationKey"][0]["value"], box.meter_interval

    assert run(scenario()) == ("Accepted", "1", 1)


async def _boot_answering(interval: Any) -> ChargeBox:
    """A charger booted by a central system on 127.0.0.1 that answers with `interval`."""

    async def answer(ws: ServerConnection) -> None:
        async for frame in ws:
            _, message_id, _, _ = json.loads(frame)
            result = {"status": "Accepted", "currentTime": "2026-12-01T10:00:00Z"}
            await ws.send(json.dumps([3, message_id, result | {"interval": interval}]))

    async with serve(answer, "127.0.0.1", 0, subprotocols=[SUBPROTOCOL]) as server:
        port = server.sockets[0].getsockname()[1]
        box = ChargeBox("CP-A", f"ws://127.0.0.1:{port}/ocpp", response_timeout=5)
        await box.connect()
        try:
            await box.boot()
        finally:
            await box.close()
        return box


@pytest.mark.parametrize("interval", [-5, 10**9, 0])
def test_a_boot_interval_out_of_range_keeps_the_heartbeat_interval(interval):
    box = run(_boot_answering(interval))
    assert box.boot_status == "Accepted"
    assert box.configuration["HeartbeatInterval"][0] == "300"
    if interval:
        assert any("interval" in line and "ignored" in line for line in box.recent_log)


def test_a_boot_interval_in_range_is_the_heartbeat_interval():
    box = run(_boot_answering(45))
    assert box.configuration["HeartbeatInterval"][0] == "45"
