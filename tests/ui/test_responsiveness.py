"""The console stays responsive while 200 simulated chargers send meter values."""

from __future__ import annotations

import asyncio
import time

from ocpp.v16 import call
from PySide6.QtCore import QTimer

from evcms_desktop.csms.protocol import format_timestamp
from evcms_desktop.simulator.chargebox import ChargeBox
from evcms_desktop.store.models import ChargePoint, Connector, utcnow
from evcms_desktop.ui.main_window import MainWindow
from evcms_desktop.ui.roles import Session
from tests.ui.conftest import run

CHARGERS = 200
ROUNDS = 5  # one sample a second from each charger
TICK_MS = 50
MAX_LATENESS_S = 0.5  # generous: a frozen UI is late by seconds


def _sample(power_w: int, soc: int) -> list[dict]:
    return [
        {
            "timestamp": format_timestamp(utcnow()),
            "sampledValue": [
                {"value": str(power_w), "measurand": "Power.Active.Import", "unit": "W"},
                {"value": str(soc), "measurand": "SoC", "unit": "Percent"},
            ],
        }
    ]


def test_ui_stays_responsive_under_200_chargers_metering(
    qtbot, db, station, bus, central, service, credentials
):
    idents = [f"SIM-{i:03d}" for i in range(CHARGERS)]
    with db.atomic():
        for ident in idents:
            Connector.create(
                charge_point=ChargePoint.create(ident=ident, station=station), number=1
            )
    window = MainWindow(service, bus, Session(credentials), commands=central.commands)
    qtbot.addWidget(window)
    window.show()
    window.tabs.setCurrentWidget(window.chargers)
    window.chargers.select(idents[0], 1)
    url = f"ws://127.0.0.1:{central.port}/ocpp"
    boxes = [ChargeBox(ident, url, connectors=1) for ident in idents]

    async def plug_in(box: ChargeBox) -> None:
        await box.connect()
        await box.boot()

    async def plug_in_all() -> None:
        await asyncio.gather(*(plug_in(b) for b in boxes))

    run(qtbot, plug_in_all(), timeout=30_000)

    lateness: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        lateness.append(now - last[0] - TICK_MS / 1000)
        last[0] = now

    probe = QTimer(interval=TICK_MS)
    probe.timeout.connect(tick)

    async def meter(box: ChargeBox, offset: float) -> None:
        await asyncio.sleep(offset)
        for k in range(ROUNDS):
            await box.send(
                call.MeterValues(connector_id=1, meter_value=_sample(7000 + k * 100, 50 + k))
            )
            await asyncio.sleep(1.0)

    async def storm() -> None:
        await asyncio.gather(*(meter(b, i / CHARGERS) for i, b in enumerate(boxes)))

    probe.start()
    run(qtbot, storm(), timeout=30_000)
    probe.stop()

    def all_shown() -> bool:
        rows = [window.chargers_model.row_for(i, 1) for i in idents]
        return all(r is not None and r.power_kw == 7.4 and r.soc == 54 for r in rows)

    qtbot.waitUntil(all_shown, timeout=10_000)
    assert len(lateness) > ROUNDS * 1000 / TICK_MS * 0.5, "the probe timer hardly ran"
    worst = max(lateness)
    print(f"worst lateness {worst * 1000:.0f} ms over {len(lateness)} ticks")
    assert worst < MAX_LATENESS_S, f"a {TICK_MS} ms timer was {worst * 1000:.0f} ms late"
    run(qtbot, asyncio.gather(*(b.close() for b in boxes)), timeout=30_000)
