"""The simulator window, driven by its buttons inside a qasync loop, against a real
central system, and the battery model behind it."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
import qasync

from evcms_desktop.csms import charger_admin
from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from evcms_desktop.domain.plans import PlanKind
from evcms_desktop.simulator.chargebox import Battery
from evcms_desktop.store.models import (
    ChargingTransaction,
    Event,
    MeterValue,
    TransactionState,
    utcnow,
)
from evcms_desktop.ui.chargebox_window import ChargeBoxWindow
from tests.csms.helpers import FakeClock, book, until


async def _stop_and_disconnect(window: ChargeBoxWindow) -> None:
    """Stop the window's session, wait until the central system has finished it, then
    disconnect."""
    assert window.box is not None
    window.stop_button.click()
    await until(lambda: not window.box.transactions)
    await until(
        lambda: (
            ChargingTransaction.select()
            .where(ChargingTransaction.state == TransactionState.FINISHED)
            .exists()
        )
    )
    window.connect_button.click()
    await until(lambda: not window.box.connected)


def test_battery_tapers_above_80_percent():
    battery = Battery(capacity_kwh=50, soc=50, max_power_kw=22)
    assert battery.power_kw() == 22
    battery.soc = 90
    assert battery.power_kw() == pytest.approx(11)
    battery.soc = 99.9
    assert battery.power_kw() == battery.min_power_kw
    battery.soc = 79
    taken = sum(battery.charge(60) for _ in range(600))
    assert battery.soc == 100 and battery.power_kw() == 0
    assert taken == pytest.approx(50 * 0.21)


def test_window_connects_charges_and_stops(qapp, db, station, tmp_path):
    # The window's charger keeps real time, so the booking is for now (kept as asked).
    clock = FakeClock(utcnow())
    booking = book(db, station, clock, minutes=30, kind=PlanKind.DURATION)
    config = CsmsConfig(data_dir=tmp_path, port=0, tick_seconds=0.05, probe_features=False)
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)

    async def scenario() -> ChargeBoxWindow:
        cs = CentralSystem(config, db, clock=clock)
        await cs.start()
        try:
            window = ChargeBoxWindow(
                f"ws://127.0.0.1:{cs.port}/ocpp", "CP-A", meter_interval=0.05, time_scale=60
            )
            window.show()
            window.connect_button.click()
            await until(lambda: window.box is not None and window.box.boot_status == "Accepted")
            assert window.connect_button.text() == "Disconnect"
            window.booking_edit.setText(booking.code)
            window.charge_button.click()
            await until(lambda: bool(window.box.transactions))
            await asyncio.sleep(0.2)  # a few meter values at a minute a second
            await _stop_and_disconnect(window)
            return window
        finally:
            await cs.stop()

    try:
        with loop:
            window = loop.run_until_complete(asyncio.wait_for(scenario(), 20))
    finally:
        asyncio.set_event_loop(None)
    window.hide()  # closing the last window would quit the test's application
    text = window.log_view.toPlainText()
    assert "BootNotification: Accepted" in text
    assert f"Authorize {booking.code}: Accepted" in text
    tx = ChargingTransaction.get()
    assert tx.energy_kwh > Decimal(0) and tx.price_total is not None
    assert tx.stopped_at > tx.started_at
    # An hour a minute: the readings are stamped with the simulated clock, so the energy
    # fits the connector's power and is billed as measured.
    assert tx.energy_kwh == Decimal(tx.meter_stop_wh - tx.meter_start_wh) / 1000
    assert not Event.select().where(Event.kind == "session_review").exists()
    periodic = MeterValue.select().where(MeterValue.context == "Sample.Periodic").count()
    assert periodic >= 3 and periodic % 3 == 0


def test_the_windows_default_run_is_billed(qapp, db, station, tmp_path):
    """Out of the box (real time, its meter interval) the window's session, long enough
    that a minute-a-second clock would run past the central system's five minutes of
    trust, is billed as measured, with nothing to review."""
    booking = book(db, station, FakeClock(utcnow()), minutes=30, kind=PlanKind.DURATION)
    config = CsmsConfig(data_dir=tmp_path, port=0, tick_seconds=0.05, probe_features=False)
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)

    def periodic() -> int:
        return MeterValue.select().where(MeterValue.context == "Sample.Periodic").count()

    async def scenario() -> ChargeBoxWindow:
        cs = CentralSystem(config, db)  # the real clock, as a site's central system keeps
        await cs.start()
        try:
            window = ChargeBoxWindow(f"ws://127.0.0.1:{cs.port}/ocpp", "CP-A")
            window.show()
            window.connect_button.click()
            await until(lambda: window.box is not None and window.box.boot_status == "Accepted")
            window.booking_edit.setText(booking.code)
            window.charge_button.click()
            await until(lambda: periodic() >= 3 * 4, timeout=60)  # four readings
            await _stop_and_disconnect(window)
            return window
        finally:
            await cs.stop()

    try:
        with loop:
            window = loop.run_until_complete(asyncio.wait_for(scenario(), 90))
    finally:
        asyncio.set_event_loop(None)
    window.hide()
    tx = ChargingTransaction.get()
    assert tx.energy_kwh > Decimal(0) and tx.price_total is not None
    assert tx.energy_kwh == Decimal(tx.meter_stop_wh - tx.meter_start_wh) / 1000
    assert not Event.select().where(Event.kind.in_(["session_review", "reading_refused"])).exists()
    assert window.time_scale == 1 and "real time" in window.speed_note.text()


def test_a_faster_clock_is_said_to_be_flagged_not_billed(qapp):
    window = ChargeBoxWindow("ws://127.0.0.1:1/ocpp", "CP-A")
    assert window.clock_choice.currentData() == 1
    assert "billed" in window.speed_note.text() and "review" not in window.speed_note.text()
    window.clock_choice.setCurrentIndex(window.clock_choice.findData(60.0))
    assert window.time_scale == 60
    assert "flags the session for review" in window.speed_note.text()
    assert "60×" in window.windowTitle()


def test_a_refused_connection_says_what_to_do_in_the_consoles_words(qapp, db, station, tmp_path):
    """A new user's first simulated charger, unknown to a central system with passwords,
    read only "server rejected WebSocket connection: HTTP 401"; the window now says how
    to let it in, and once added with a password it connects."""
    config = CsmsConfig(
        data_dir=tmp_path, port=0, tick_seconds=0.05, probe_features=False, security_profile=1
    )
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)

    async def scenario() -> ChargeBoxWindow:
        cs = CentralSystem(config, db)
        await cs.start()
        try:
            window = ChargeBoxWindow(f"ws://127.0.0.1:{cs.port}/ocpp", "CP-1")
            window.show()
            window.connect_button.click()
            await until(lambda: "error:" in window.log_view.toPlainText())
            charger_admin.add_charger("CP-1", password="a-simulated-secret-1", station=station)
            window.password_edit.setText("a-simulated-secret-1")
            window.connect_button.click()
            await until(lambda: window.box is not None and window.box.boot_status == "Accepted")
            window.connect_button.click()
            await until(lambda: not window.box.connected)
            return window
        finally:
            await cs.stop()

    try:
        with loop:
            window = loop.run_until_complete(asyncio.wait_for(scenario(), 20))
    finally:
        asyncio.set_event_loop(None)
    window.hide()
    first = window.log_view.toPlainText().splitlines()[0]
    assert first.endswith(
        "error: HTTP 401: unknown charger or wrong password. An operator adds the charger"
        " under Settings > Chargers with a password of 16 to 40 characters; type that"
        " password here."
    ), first
