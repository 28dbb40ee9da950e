"""The console keeps its GUI thread free while many simulated chargers send meter values.

How late the GUI's timers are under load is a figure, not a unit test:
benchmarks/console_responsiveness.py measures it (200 chargers). Here, what cannot fail
from a busy machine: the store's commits run off the GUI thread, the GUI's own timers
keep running during the storm, and every charger's last value is shown.
"""

from __future__ import annotations

import asyncio
import threading

from ocpp.v16 import call
from PySide6.QtCore import QTimer

from evcms_desktop.csms.protocol import format_timestamp
from evcms_desktop.csms.writer import BatchWriter
from evcms_desktop.simulator.chargebox import ChargeBox
from evcms_desktop.store.models import ChargePoint, Connector, utcnow
from evcms_desktop.ui.main_window import MainWindow
from evcms_desktop.ui.roles import Session
from tests.ui.conftest import run

CHARGERS = 20
ROUNDS = 2


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


def test_meter_values_are_stored_off_the_gui_thread_and_shown(
    qtbot, monkeypatch, db, station, bus, central, service, credentials
):
    commit_threads: list[int] = []
    real_commit = BatchWriter._commit

    def recording_commit(self, *queued):
        commit_threads.append(threading.get_ident())
        return real_commit(self, *queued)

    monkeypatch.setattr(BatchWriter, "_commit", recording_commit)
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

    run(qtbot, asyncio.gather(*(plug_in(b) for b in boxes)), timeout=30_000)
    before_storm = len(commit_threads)
    ticks: list[int] = []
    probe = QTimer(interval=50)
    probe.timeout.connect(lambda: ticks.append(threading.get_ident()))

    async def meter(box: ChargeBox, offset: float) -> None:
        await asyncio.sleep(offset)
        for k in range(ROUNDS):
            await box.send(
                call.MeterValues(connector_id=1, meter_value=_sample(7000 + k * 100, 50 + k))
            )
            await asyncio.sleep(0.5)

    probe.start()
    run(qtbot, asyncio.gather(*(meter(b, i / CHARGERS) for i, b in enumerate(boxes))))
    probe.stop()

    def all_shown() -> bool:
        rows = [window.chargers_model.row_for(i, 1) for i in idents]
        return all(r is not None and r.power_kw == 7.1 and r.soc == 51 for r in rows)

    qtbot.waitUntil(all_shown, timeout=10_000)
    run(qtbot, central.writer.flush())
    gui_thread = threading.main_thread().ident
    assert len(commit_threads) > before_storm  # the storm's rows were committed ...
    assert gui_thread not in commit_threads  # ... never on the GUI thread
    assert ticks and set(ticks) == {gui_thread}  # the GUI's timers ran during the storm
    seen = ChargePoint.select().where(
        ChargePoint.ident.in_(idents), ChargePoint.last_seen_at.is_null(False)
    )
    assert seen.count() == CHARGERS
    run(qtbot, asyncio.gather(*(b.close() for b in boxes)), timeout=30_000)
