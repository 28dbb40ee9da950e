"""Screenshots of every console tab, the booking flow and the kiosk flow, at two sizes.

Runs a real central system and simulated chargers on a throw-away database with a day of
demo bookings, then saves PNGs into docs/screens/WIDTHxHEIGHT/ for a common station PC
(1366x768) and a full-HD screen (1920x1080). The console window is the screen less 48
pixels of height (a title bar and a panel); the kiosk is full screen. Needs a display; on
a server use Xvfb with a screen as large as the largest size:

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python tools/screenshots.py
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import qasync
from PySide6.QtCore import Qt, QTime
from PySide6.QtWidgets import QApplication, QDialog, QWidget

from evcms_desktop.csms.events import EventBus
from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from evcms_desktop.domain.validation import PlanRequest
from evcms_desktop.simulator.chargebox import Battery, ChargeBox
from evcms_desktop.store.bookings import BookingService, DriverDetails
from evcms_desktop.store.database import open_database
from evcms_desktop.store.models import (
    Booking,
    BookingState,
    ChargePoint,
    ChargingTransaction,
    Connector,
    Station,
    TransactionState,
    utcnow,
)
from evcms_desktop.store.stations import station_calendar
from evcms_desktop.ui.dialogs.booking import NewBookingDialog
from evcms_desktop.ui.kiosk import KioskWindow
from evcms_desktop.ui.main_window import DOCK_WIDTH, NARROW_WIDTH, MainWindow
from evcms_desktop.ui.roles import KIOSK_PIN_KEY, OPERATOR_KEY, Credentials, Role, Session
from evcms_desktop.ui.theme import icon_path

log = logging.getLogger("screenshots")

SIZES = ((1366, 768), (1920, 1080))
WINDOW_DECORATION_HEIGHT = 48

ROOT = Path(__file__).resolve().parents[1]
CHARGERS = ("CP-01", "CP-02", "CP-03", "CP-04")
# (local arrival hour, minutes, kWh) of the day's demo requests
REQUESTS = [
    (7, 0, 18), (7, 30, 12), (8, 15, 20), (8, 30, 15), (9, 0, 25), (9, 30, 10),
    (10, 0, 14), (11, 30, 16), (12, 0, 22), (12, 30, 8), (16, 0, 18), (16, 30, 12),
    (17, 0, 20), (17, 15, 15), (17, 30, 24), (18, 0, 10), (18, 30, 16), (19, 0, 12),
    (20, 0, 18), (21, 0, 9),
]  # fmt: skip
DRIVERS = ["A. Patel", "J. Smith", "M. Nowak", "L. Chen", "R. Okafor", None]


def seed(db, station: Station, now: datetime) -> list[Booking]:
    """Chargers, today's bookings (earlier ones completed) and the ones charging now."""
    station.name = "Riverside Car Park"
    station.save()
    for ident in CHARGERS:
        cp = ChargePoint.create(ident=ident, station=station)
        for number in (1, 2):
            Connector.create(charge_point=cp, number=number)
    live_service = BookingService(db, station)
    live = []
    for connector in Connector.select().where(Connector.number == 1).limit(3):
        outcome = live_service.plan(
            PlanRequest(
                arrival=now,
                duration=timedelta(hours=2),
                energy_kwh=Decimal(30),
                connector_id=connector.id,
            )
        )
        plan = outcome.plans[0]
        live.append(live_service.confirm(outcome, plan, DriverDetails("Walk-up driver")))
    tz = station_calendar(station).tz
    midnight = datetime.combine(now.astimezone(tz).date(), time(0), tz).astimezone(UTC)
    day_service = BookingService(db, station, clock=lambda: midnight)
    ended: list[Booking] = []
    for i, (hour, minute, kwh) in enumerate(REQUESTS):
        arrival = datetime.combine(midnight.astimezone(tz).date(), time(hour, minute), tz)
        outcome = day_service.plan(
            PlanRequest(arrival=arrival, duration=timedelta(hours=1), energy_kwh=Decimal(kwh))
        )
        plan = outcome.cheapest if i % 3 else outcome.plans[0]
        if plan is None:
            continue
        booking = day_service.confirm(outcome, plan, DriverDetails(DRIVERS[i % len(DRIVERS)]))
        if booking.end <= now:
            ended.append(booking)
    # after all bookings are made, so that no one books over a no-show
    for i, booking in enumerate(ended):
        _finish(booking, no_show=i == 3)
    return live


def _finish(booking: Booking, no_show: bool) -> None:
    if no_show:
        booking.state = BookingState.NO_SHOW.value
        booking.save()
        return
    booking.state = BookingState.COMPLETED.value
    booking.save()
    connector = booking.connector
    energy = booking.energy_kwh
    ChargingTransaction.create(
        charge_point=connector.charge_point,
        connector_number=connector.number,
        booking=booking,
        id_tag=booking.code,
        meter_start_wh=0,
        meter_stop_wh=int(energy * 1000),
        started_at=booking.start + timedelta(minutes=3),
        stopped_at=booking.end - timedelta(minutes=2),
        stop_reason="EVDisconnected",
        state=TransactionState.FINISHED.value,
        energy_kwh=energy,
        price_energy=booking.price_energy,
        price_time_of_use=booking.price_time_of_use,
        price_service=booking.price_service,
        price_total=booking.price_total,
        last_energy_wh=float(energy * 1000),
    )


async def settle(seconds: float) -> None:
    """Let Qt paint and the chargers talk (the loop runs Qt's events while it waits)."""
    await asyncio.sleep(seconds)


def save(widget: QWidget, name: str, out: Path) -> None:
    path = out / name
    widget.grab().save(str(path))
    log.info("Saved %s", path)


async def shoot(out: Path, warmup: float, sizes: tuple[tuple[int, int], ...]) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="evcms-shots-"))
    db = open_database(tmp / "evcms.sqlite3")
    station = Station.get()
    now = utcnow()
    live = seed(db, station, now)
    credentials = Credentials()
    await credentials.set_secret(OPERATOR_KEY, "screenshot-operator")
    await credentials.set_secret(KIOSK_PIN_KEY, "2468")
    bus = EventBus()
    central = CentralSystem(
        CsmsConfig(data_dir=tmp, host="127.0.0.1", port=0, accept_unknown=True), db, bus
    )
    await central.start()
    session = Session(credentials)
    service = BookingService(db, station)
    window = MainWindow(
        service,
        bus,
        session,
        commands=central.commands,
        approver=central.approve,
        server_text=f"Listening on {central.url('0.0.0.0')}/…",
        ocpp_url=central.url(),
    )
    window.resize(*sizes[0])
    window.show()
    url = central.url()
    boxes = [
        ChargeBox(
            ident,
            url,
            connectors=2,
            meter_interval=1.0,
            time_scale=30,
            battery=lambda soc=soc: Battery(soc=soc, capacity_kwh=64.0),
        )
        for ident, soc in zip((*CHARGERS[:3], "CP-05"), (76.0, 35.0, 52.0, 20.0), strict=True)
    ]
    for box in boxes:
        await box.connect()
        await box.boot()
        if box.boot_status == "Accepted":
            for connector in (1, 2):
                await box.status(connector, "Available")
    for box, booking in zip(boxes, live, strict=False):
        await box.charge(booking.code, booking.connector.number)
    window.chargers.select(live[0].connector.charge_point.ident, live[0].connector.number)
    window.analysis.bookings.setValue(200)
    window.analysis.days.setValue(3)
    window.analysis.start_scenario()
    await settle(warmup)
    while window.analysis.running:
        await settle(0.5)
    window.refresh_store_views()
    await settle(1.5)
    for width, height in sizes:
        folder = out / f"{width}x{height}"
        folder.mkdir(parents=True, exist_ok=True)
        await shoot_console(window, session, folder, width, height - WINDOW_DECORATION_HEIGHT)
        await shoot_booking(window, service, folder)
        await shoot_kiosk(service, credentials, folder, width, height)

    for box in boxes:
        await box.close()
    window.quit_confirmed = True
    window.close()
    await central.stop()
    db.close()


async def shoot_console(
    window: MainWindow, session: Session, out: Path, width: int, height: int
) -> None:
    window.resize(width, height)
    window.notifications_dock.setVisible(width >= NARROW_WIDTH)
    window.resizeDocks([window.notifications_dock], [DOCK_WIDTH], Qt.Orientation.Horizontal)
    await settle(0.5)
    for name, tab, operator in (
        ("console-today.png", window.today, False),
        ("console-chargers.png", window.chargers, False),
        ("console-bookings.png", window.bookings, False),
        ("console-sessions.png", window.sessions, False),
        ("console-demand.png", window.demand, False),
        ("console-ocpp-log.png", window.ocpp_log, False),
        ("console-analysis.png", window.analysis, False),
        ("console-settings.png", window.settings, True),
    ):
        session.set_role(Role.OPERATOR if operator else Role.ATTENDANT)
        if tab is window.ocpp_log:
            window.ocpp_log.select_filter(CHARGERS[0])
        window.tabs.setCurrentWidget(tab)
        await settle(0.5)
        save(window, name, out)
    session.set_role(Role.ATTENDANT)


async def shoot_booking(window: MainWindow, service: BookingService, out: Path) -> None:
    dialog = NewBookingDialog(service, window)
    dialog.open()
    form = dialog.flow.form
    form.time.setTime(QTime(17, 0))
    form.duration.setValue(90)
    form.energy.setText("20")
    form.name.setText("Sam Driver")
    await settle(0.3)
    save(dialog, "booking-form.png", out)
    dialog.flow.submit()
    await settle(0.5)
    save(dialog, "booking-plans.png", out)
    cheapest = next(c for c in dialog.flow.plans.cards if c.property("cheapest"))
    cheapest.choose_button.click()
    await settle(0.3)
    save(dialog, "booking-confirmed.png", out)
    code = dialog.flow.booking.code if dialog.flow.booking else ""
    dialog.accept()
    details = window.open_booking(code)
    if details is not None:
        await settle(0.3)
        save(details, "booking-details.png", out)
        details.accept()
    window.booking_actions.check_in(service.find(code))
    confirm = window.booking_actions.dialog
    if isinstance(confirm, QDialog) and confirm.isVisible():
        await settle(0.3)
        save(confirm, "booking-early-check-in.png", out)
        confirm.reject()


async def shoot_kiosk(
    service: BookingService, credentials: Credentials, out: Path, width: int, height: int
) -> None:
    kiosk = KioskWindow(service, credentials)
    kiosk.setGeometry(0, 0, width, height)
    kiosk.showFullScreen()
    await settle(0.5)
    save(kiosk, "kiosk-start.png", out)
    kiosk.start_booking()
    kiosk.flow.form.time.setTime(QTime(18, 0))
    kiosk.flow.form.energy.setText("15")
    await settle(0.3)
    save(kiosk, "kiosk-form.png", out)
    kiosk.flow.submit()
    await settle(0.5)
    save(kiosk, "kiosk-plans.png", out)
    kiosk.flow.plans.cards[0].choose_button.click()
    await settle(0.5)
    save(kiosk, "kiosk-confirmed.png", out)
    code = kiosk.flow.confirmation.code.text()
    kiosk.go_home()
    kiosk.stack.setCurrentWidget(kiosk.lookup_page)
    kiosk.code.setText(code)
    kiosk.look_up()
    await settle(0.3)
    save(kiosk, "kiosk-my-booking.png", out)
    kiosk.ask_exit()
    await settle(0.3)
    save(kiosk, "kiosk-staff.png", out)
    kiosk.unlocked = True
    kiosk.close()


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.partition("x")
    if not (width.isdigit() and height.isdigit() and 640 <= int(width) <= 7680):
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, e.g. 1366x768")
    return int(width), int(height)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "screens", help="folder for the PNGs"
    )
    parser.add_argument(
        "--size",
        type=_size,
        help="only this screen size, WIDTHxHEIGHT (default: 1366x768 and 1920x1080)",
    )
    parser.add_argument(
        "--warmup", type=float, default=25.0, help="seconds of live meter values first"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    screen_sizes = SIZES if args.size is None else (args.size,)
    app = QApplication(sys.argv)
    app.setQuitOnLastWindowClosed(False)
    if (icon := icon_path()) is not None:
        from PySide6.QtGui import QIcon

        app.setWindowIcon(QIcon(str(icon)))
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    with loop:
        loop.run_until_complete(shoot(args.out, args.warmup, screen_sizes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
