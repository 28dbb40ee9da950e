"""The Analysis tab runs the evaluation off the UI thread and shows its tables and figures."""

from __future__ import annotations

import multiprocessing
from datetime import timedelta
from decimal import Decimal

import peewee
from PySide6.QtCore import QDate

from evcms_desktop.domain.validation import PlanRequest
from evcms_desktop.store.bookings import BookingService
from evcms_desktop.store.models import Booking, Station, database_proxy
from evcms_desktop.ui.analysis_tab import AnalysisTab
from tests.conftest import NOW


def test_scenario_run_fills_the_tab(qtbot, db: peewee.SqliteDatabase, station: Station) -> None:
    tab = AnalysisTab(station)
    qtbot.addWidget(tab)
    tab.bookings.setValue(40)
    tab.days.setValue(2)
    with qtbot.waitSignal(tab.report_ready, timeout=60_000):
        tab.run_scenario.click()
        assert tab.running and not tab.run_scenario.isEnabled()  # the UI is not blocked
    assert not tab.running and tab.run_scenario.isEnabled()
    assert tab.progress.value() == tab.progress.maximum() == 80
    assert tab.table3.rowCount() == 4
    assert tab.table3.item(1, 4).text() == "13.86"  # the paper's Case 2 original cost
    assert tab.comparison.item(0, 0).text().startswith("Total cost of the")
    assert tab.results.count() == 7  # Table 3, Comparison, the frontier, Figures 13 to 16
    assert tab.frontier.table.rowCount() >= 1
    assert tab.frontier.table.item(0, 0).text().startswith("peak ")
    assert database_proxy.obj is db  # the console's database stayed bound


def test_real_bookings_run(qtbot, db: peewee.SqliteDatabase, station: Station) -> None:
    service = BookingService(db, station, clock=lambda: NOW)
    for hours in (2, 2, 11, 12):  # 08:00 twice (Peak On), 17:00 and 18:00 (Peak On)
        request = PlanRequest(
            arrival=NOW + timedelta(hours=hours),
            duration=timedelta(hours=1),
            energy_kwh=Decimal("17.6"),
        )
        outcome = service.plan(request)
        assert outcome.cheapest is not None
        service.confirm(outcome, outcome.cheapest)
    tab = AnalysisTab(station)
    qtbot.addWidget(tab)
    day = QDate(NOW.year, NOW.month, NOW.day)
    tab.period_from.setDate(day)
    tab.period_to.setDate(day)
    with qtbot.waitSignal(tab.report_ready, timeout=60_000):
        tab.run_real.click()
    assert tab.report is not None
    assert len(tab.report.run.rows) == 4
    assert len(tab.report.run.setup.connector_powers_kw) == 4  # the station's connectors
    assert Booking.select().count() == 4  # the real bookings were only read


def test_an_empty_period_says_so(qtbot, db: peewee.SqliteDatabase, station: Station) -> None:
    tab = AnalysisTab(station)
    qtbot.addWidget(tab)
    tab.run_real.click()
    assert not tab.running
    assert "No bookings" in tab.status.text()


def test_a_run_can_be_cancelled_and_keeps_what_was_shown(
    qtbot, db: peewee.SqliteDatabase, station: Station
) -> None:
    tab = AnalysisTab(station)
    qtbot.addWidget(tab)
    assert tab.run_scenario.text() == "Run scenario"  # nothing ran yet
    assert not tab.cancel_button.isEnabled()
    assert "Original" in tab.explanation.text() and "Cases: 1 Peak On" in tab.explanation.text()
    tab.bookings.setValue(5000)  # a minute or more of work: cancelled long before its end
    tab.days.setValue(60)
    tab.run_scenario.click()
    assert tab.running and tab.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: tab.progress.value() > 0, timeout=120_000)  # the child books
    tab.cancel_button.click()
    assert tab.status.text() == "Cancelling…"
    qtbot.waitUntil(lambda: not tab.running, timeout=60_000)
    assert tab.status.text() == "Cancelled; nothing was kept from that run."
    assert tab.report is None
    assert tab.run_scenario.isEnabled() and not tab.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: not multiprocessing.active_children(), timeout=10_000)


def test_the_progress_turns_busy_while_the_schedule_is_solved(
    qtbot, db: peewee.SqliteDatabase, station: Station
) -> None:
    tab = AnalysisTab(station)
    qtbot.addWidget(tab)
    tab._on_progress(40, 80)
    assert (tab.progress.value(), tab.progress.maximum()) == (40, 80)
    tab._on_progress(80, 80)  # all booked: what follows reports no steps
    assert tab.progress.maximum() == 0  # busy, not a bar stuck at 100 %
    assert tab.status.text().startswith("Solving the site schedule")
