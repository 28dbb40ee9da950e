"""The WebSocket handshake under abuse: duplicate credentials, logs, the connection cap,
and the defaults a new installation listens with."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from evcms_desktop.app.cli import build_parser, config_from_args
from evcms_desktop.app.config import csms_config
from evcms_desktop.csms import charger_admin
from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from evcms_desktop.store.models import ChargePoint, Connector, Station
from tests.csms.helpers import running
from tests.hostile.helpers import RawCharger, run

PASSWORD = "correct-horse-battery"


def _basic(ident: str, password: str = PASSWORD) -> str:
    return "Basic " + base64.b64encode(f"{ident}:{password}".encode()).decode()


def test_two_authorization_headers_get_401(db, station, config: CsmsConfig):
    """Two Authorization headers gave HTTP 500 with a traceback."""
    config.security_profile = 1
    charger_admin.set_password("CP-A", PASSWORD)
    cs = CentralSystem(config, db)

    async def scenario() -> int:
        async with running(cs):
            headers = [("Authorization", _basic("CP-A")), ("Authorization", _basic("CP-A"))]
            with pytest.raises(InvalidStatus) as caught:
                await RawCharger.connect(cs, "CP-A", additional_headers=headers)
            return caught.value.response.status_code

    assert run(scenario()) == 401


def test_credentials_never_reach_the_log(db, station, config: CsmsConfig, caplog):
    """--log-level DEBUG logged `Authorization: Basic …`."""
    config.security_profile = 1
    charger_admin.set_password("CP-A", PASSWORD)
    cs = CentralSystem(config, db)
    header = _basic("CP-A")

    async def scenario() -> None:
        async with running(cs):
            charger = await RawCharger.connect(
                cs, "CP-A", additional_headers={"Authorization": header}
            )
            await charger.close()

    with caplog.at_level(logging.DEBUG):
        run(scenario())
    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("evcms"))
    assert "Authorization" in text  # the header lines are logged at DEBUG ...
    assert header.split()[1] not in text and PASSWORD not in text  # ... without the secret


def test_the_connection_cap_is_exact(db, station, config: CsmsConfig):
    """The cap overshot by 22 %: handshakes awaiting their password check all passed it."""
    config.security_profile = 1
    config.max_connections = 5
    station_row = Station.get()
    for i in range(12):
        cp = ChargePoint.create(ident=f"CAP-{i}", station=station_row)
        Connector.create(charge_point=cp, number=1)
        charger_admin.set_password(cp.ident, PASSWORD)
    cs = CentralSystem(config, db)

    async def scenario() -> tuple[int, int]:
        async with running(cs):

            async def one(i: int) -> RawCharger | None:
                ident = f"CAP-{i}"
                try:
                    return await RawCharger.connect(
                        cs, ident, additional_headers={"Authorization": _basic(ident)}
                    )
                except InvalidStatus as exc:
                    assert exc.response.status_code == 503
                    return None

            chargers = await asyncio.gather(*(one(i) for i in range(12)))
            connected = [c for c in chargers if c is not None]
            count = len(cs.connected_ids())
            for charger in connected:
                await charger.close()
            return len(connected), count

    assert run(scenario()) == (5, 5)


def test_a_new_installation_asks_for_passwords():
    """The console listened with security profile 0: anyone could act as any charger."""
    fresh = config_from_args(build_parser().parse_args(["--headless"]))
    assert csms_config(fresh, {}).security_profile == 1
    assert csms_config(fresh, {"security_profile": 0}).security_profile == 0


def test_max_connections_is_settable_from_the_command_line():
    args = build_parser().parse_args(["--max-connections", "7", "--headless"])
    assert csms_config(config_from_args(args), {}).max_connections == 7
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--max-connections", "0"])


@pytest.mark.parametrize("days", ["0", "3651", "NaN", "1e3"])
def test_event_retention_from_the_command_line_is_checked(days: str, capsys):
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["--event-retention-days", days])
    assert exited.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


@pytest.mark.parametrize("path_id", ["CP-A%0A", "CP%3AA", "CP-A%0D%0Aforged"])
def test_a_path_id_the_validator_refuses_gets_404(db, station, config: CsmsConfig, caplog, path_id):
    """`NL-1%0A` passed the id check (`$` matches before a final newline) and the charger
    was taken in under an id with a newline; `CP:9` can never log in over Basic auth."""
    cs = CentralSystem(config, db)

    async def scenario() -> int:
        async with running(cs):
            with pytest.raises(InvalidStatus) as caught:
                await RawCharger.connect(cs, path_id)
            return caught.value.response.status_code

    with caplog.at_level(logging.INFO):
        assert run(scenario()) == 404
    assert not ChargePoint.select().where(ChargePoint.ident.contains("\n")).exists()
    assert not ChargePoint.select().where(ChargePoint.ident.contains(":")).exists()
    assert any("is not /ocpp/{id}" in r.getMessage() for r in caplog.records)


def _listener_lines(caplog) -> list[str]:
    names = ("listener", "charger_auth", "websocket")
    return [r.getMessage() for r in caplog.records if r.name.split(".")[-1] in names]


def test_refused_handshakes_cannot_rotate_the_log_away(db, station, config: CsmsConfig, caplog):
    """500 handshakes to /ocpp/ + 8,000 B's were each logged in full (5-8 KB a line) and
    rotated the log files away in a second. Now the path is cut, a few lines per address
    are logged, the rest summed up at the interval's end, and an address refused too
    often gets 429 without being checked."""
    config.refusal_interval_seconds = 4.0
    cs = CentralSystem(config, db)

    async def knock() -> int:
        with pytest.raises(InvalidStatus) as caught:
            await RawCharger.at(cs.port, "B" * 8000)
        return caught.value.response.status_code

    async def scenario() -> list[int]:
        async with running(cs):
            statuses: list[int] = []
            for _ in range(4):
                statuses += await asyncio.gather(*(knock() for _ in range(25)))
            await asyncio.sleep(4.5)  # the interval ends; the tick sums it up
            return statuses

    with caplog.at_level(logging.INFO):
        statuses = run(scenario())
    assert statuses[0] == 404 and 429 in statuses, statuses
    lines = _listener_lines(caplog)
    assert len(lines) <= 10, lines
    assert all(len(line) < 300 for line in lines), [len(line) for line in lines]
    assert any("/ocpp/" + "B" * 74 + "…'" in line for line in lines), lines
    summed = [line for line in lines if "more refused handshakes in the last 4 s" in line]
    assert summed and summed[0].startswith("127.0.0.1: "), lines
    assert int(summed[0].split()[1]) + len(lines) - len(summed) >= 100, lines


def test_frames_at_debug_are_sampled_under_a_flood(db, station, config: CsmsConfig, caplog):
    """At --log-level DEBUG websockets logged every frame of a flooder before the rate
    limit saw it: most of the loop's work, and the log rotated. Now at most 50 frame lines
    a second are logged, and the rest are counted in one line."""
    cs = CentralSystem(config, db)

    async def scenario() -> None:
        async with running(cs):
            flooder = await RawCharger.connect(cs, "CP-A")

            async def drain() -> None:  # a client that stops reading holds the server up
                with contextlib.suppress(ConnectionClosed):
                    async for _ in flooder.ws:
                        pass

            reading = asyncio.create_task(drain())
            with contextlib.suppress(ConnectionClosed):  # 1008 once it is a flood
                for i in range(200):
                    await flooder.ws.send(f'[2,"{i}","Heartbeat",{{}}]')
            await asyncio.sleep(1.5)  # the next second says what it did not log
            other = await RawCharger.connect(cs, "CP-B")  # frames of its own, that second
            await other.call("Heartbeat", {})
            await other.close()
            await reading  # the flooder was closed (1008)

    with caplog.at_level(logging.DEBUG):
        run(scenario())
    frames = [
        r.getMessage()
        for r in caplog.records
        if r.name == "evcms_desktop.csms.websocket" and r.msg in ("< %s", "> %s")
    ]
    counted = [r.getMessage() for r in caplog.records if "not logged" in r.getMessage()]
    assert len(frames) <= 150, len(frames)  # 200 read and 120 answered were each a line
    assert counted, counted
