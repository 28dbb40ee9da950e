"""How late the console's GUI timer fires while N simulated chargers send meter values.

The console (MainWindow on the Chargers tab, one connector's chart open) and the central
system run in one Qt application under qasync, as in the program; N in-process charge
boxes connect over 127.0.0.1, boot, then each sends one MeterValues a second for
--rounds rounds. A repeating Qt timer measures its lateness first with the chargers
connected but quiet (the baseline), then during the meter storm. Prints the medians,
p99 and worst lateness of both phases and their ratios (storm / quiet, one run), and
whether the console showed every charger's last value.

    .venv/bin/python benchmarks/console_responsiveness.py [-n 200] [--rounds 5]

A frozen GUI is late by seconds; the issue's target is a worst lateness under 0.5 s at 200
chargers. Run it on a quiet machine: other processes' load shows up as lateness.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import qasync  # noqa: E402
from ocpp.v16 import call  # noqa: E402
from PySide6.QtCore import Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from evcms_desktop.csms.events import EventBus  # noqa: E402
from evcms_desktop.csms.protocol import format_timestamp  # noqa: E402
from evcms_desktop.csms.server import CentralSystem, CsmsConfig  # noqa: E402
from evcms_desktop.simulator.chargebox import ChargeBox  # noqa: E402
from evcms_desktop.store.bookings import BookingService  # noqa: E402
from evcms_desktop.store.database import open_database  # noqa: E402
from evcms_desktop.store.models import ChargePoint, Connector, Station, utcnow  # noqa: E402
from evcms_desktop.ui.main_window import MainWindow  # noqa: E402
from evcms_desktop.ui.roles import Credentials, Session  # noqa: E402

TICK_MS = 50
TARGET_WORST_S = 0.5


class Lateness:
    """How much later than its interval a repeating Qt timer fires, tick by tick."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._last = time.perf_counter()
        self.timer = QTimer(interval=TICK_MS)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.samples.append(max(0.0, now - self._last - TICK_MS / 1000))
        self._last = now

    def start(self) -> None:
        self.samples = []
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self) -> list[float]:
        self.timer.stop()
        return self.samples


def sample(power_w: int, soc: int) -> list[dict]:
    return [
        {
            "timestamp": format_timestamp(utcnow()),
            "sampledValue": [
                {"value": str(power_w), "measurand": "Power.Active.Import", "unit": "W"},
                {"value": str(soc), "measurand": "SoC", "unit": "Percent"},
            ],
        }
    ]


def figures(samples: list[float]) -> tuple[float, float, float]:
    """Median, p99 and worst of the samples, in ms."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return statistics.median(ordered) * 1000, p99 * 1000, ordered[-1] * 1000


async def measure(args: argparse.Namespace, data_dir: Path) -> bool:
    db = open_database(str(data_dir / "evcms.sqlite3"), station_name="Benchmark")
    station = Station.get()
    idents = [f"SIM-{i:04d}" for i in range(args.n)]
    with db.atomic():
        for ident in idents:
            cp = ChargePoint.create(ident=ident, station=station)
            Connector.create(charge_point=cp, number=1)
    bus = EventBus()
    config = CsmsConfig(data_dir=data_dir, host="127.0.0.1", port=0, probe_features=False)
    central = CentralSystem(config, db, bus)
    await central.start()
    service = BookingService(db, station)
    window = MainWindow(service, bus, Session(Credentials()), commands=central.commands)
    window.show()
    window.tabs.setCurrentWidget(window.chargers)
    window.chargers.select(idents[0], 1)
    url = f"ws://127.0.0.1:{central.port}/ocpp"
    boxes = [ChargeBox(ident, url, connectors=1) for ident in idents]

    async def plug_in(box: ChargeBox) -> None:
        await box.connect()
        await box.boot()

    started = time.perf_counter()
    await asyncio.gather(*(plug_in(b) for b in boxes))
    print(f"{args.n} chargers connected and booted in {time.perf_counter() - started:.1f} s")

    probe = Lateness()
    probe.start()
    await asyncio.sleep(args.rounds)
    quiet = probe.stop()

    async def meter(box: ChargeBox, offset: float) -> None:
        await asyncio.sleep(offset)
        for k in range(args.rounds):
            payload = sample(7000 + k * 100, 50 + k)
            await box.send(call.MeterValues(connector_id=1, meter_value=payload))
            await asyncio.sleep(1.0)

    probe.start()
    started = time.perf_counter()
    await asyncio.gather(*(meter(b, i / args.n) for i, b in enumerate(boxes)))
    storm_seconds = time.perf_counter() - started
    storm = probe.stop()

    last_power = (7000 + (args.rounds - 1) * 100) / 1000
    deadline = time.monotonic() + 30
    shown = 0
    while time.monotonic() < deadline:
        rows = [window.chargers_model.row_for(i, 1) for i in idents]
        shown = sum(1 for r in rows if r is not None and r.power_kw == last_power)
        if shown == len(idents):
            break
        await asyncio.sleep(0.1)

    sent = args.n * args.rounds
    print(f"{sent} MeterValues in {storm_seconds:.1f} s ({sent / storm_seconds:.0f}/s)")
    print(f"{TICK_MS} ms Qt timer lateness, ms    median     p99   worst   ticks")
    q, s = figures(quiet), figures(storm)
    print(f"  quiet (connected)          {q[0]:7.2f} {q[1]:7.2f} {q[2]:7.1f} {len(quiet):7d}")
    print(f"  meter storm                {s[0]:7.2f} {s[1]:7.2f} {s[2]:7.1f} {len(storm):7d}")
    ratios = "  ".join(f"{name} {b / a:.1f}x" if a > 0 else f"{name} -" for name, a, b in
                       zip(("median", "p99", "worst"), q, s, strict=True))  # fmt: skip
    print(f"  storm / quiet              {ratios}")
    print(f"the console showed the last value of {shown} of {len(idents)} chargers")
    await asyncio.gather(*(b.close() for b in boxes))
    window.quit_confirmed = True
    window.close()
    window.deleteLater()
    await central.stop()
    db.close()
    worst_ok = s[2] / 1000 < TARGET_WORST_S
    print(f"worst lateness under {TARGET_WORST_S} s: {'yes' if worst_ok else 'NO'}")
    return worst_ok and shown == len(idents)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=200, help="chargers (default 200)")
    parser.add_argument("--rounds", type=int, default=5, help="meter values per charger")
    args = parser.parse_args()
    if not 1 <= args.n <= 5000 or not 1 <= args.rounds <= 600:
        parser.error("-n is 1 to 5000 chargers, --rounds 1 to 600")
    app = QApplication(sys.argv[:1])
    app.setQuitOnLastWindowClosed(False)  # the window closes before the loop's work ends
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    with tempfile.TemporaryDirectory(prefix="evcms-bench-") as tmp, loop:
        ok = loop.run_until_complete(measure(args, Path(tmp)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
