"""At 1366x768 (a common station PC) no table header or value is clipped or wrapped, and
the kiosk fits the screen with touch targets of at least 9 mm."""

from __future__ import annotations

from datetime import timedelta

from PySide6.QtCore import Qt, QTime
from PySide6.QtWidgets import QAbstractSpinBox, QPushButton, QTableView

from evcms_desktop.domain.validation import PlanRequest
from evcms_desktop.store.bookings import DriverDetails
from evcms_desktop.store.models import Setting
from evcms_desktop.ui.kiosk import KioskWindow
from evcms_desktop.ui.roles import KIOSK_PIN_KEY
from tests.conftest import NOW

MM_PER_INCH = 25.4


def _fits(table: QTableView) -> bool:
    header = table.horizontalHeader()
    model = table.model()
    for column in range(model.columnCount()):
        width = header.sectionSize(column)
        if width < header.sectionSizeFromContents(column).width():
            return False  # the header is clipped
        if width < table.sizeHintForColumn(column):
            return False  # a value is clipped
    return True


def test_no_table_clips_at_1366x768(qtbot, service, window_factory):
    for hours in (1, 2, 5):
        outcome = service.plan(
            PlanRequest(arrival=NOW + timedelta(hours=hours), duration=timedelta(hours=1),
                        energy_kwh=10)
        )  # fmt: skip
        service.confirm(outcome, outcome.plans[0], DriverDetails("Alexandra Long-Name", None))
    window = window_factory()
    window.resize(1366, 720)  # the screen less a title bar and a panel
    assert not window.notifications_dock.isVisible()  # opened narrow: the tables get room
    for index in range(window.tabs.count()):
        window.tabs.setCurrentIndex(index)
        tab = window.tabs.currentWidget()
        for table in tab.findChildren(QTableView):
            if not table.isVisible() or table.model().columnCount() == 0:
                continue
            qtbot.waitUntil(lambda t=table: _fits(t), timeout=5000)
            assert not table.wordWrap()
            assert table.horizontalScrollBar().maximum() == 0, window.tabs.tabText(index)


def _mm(widget, pixels: float) -> float:
    return pixels / widget.screen().logicalDotsPerInchY() * MM_PER_INCH


def _touch_targets_are_big_enough(kiosk: KioskWindow) -> None:
    for widget in [*kiosk.findChildren(QPushButton), *kiosk.findChildren(QAbstractSpinBox)]:
        if widget.isVisible():
            assert _mm(widget, widget.height()) >= 9, (
                widget.text() if hasattr(widget, "text") else widget
            )


def test_the_kiosk_fits_1366x768_with_driver_words_and_big_targets(qtbot, service, credentials):
    Setting.insert(key=KIOSK_PIN_KEY, value=credentials.hasher.hash("2468")).execute()
    kiosk = KioskWindow(service, credentials, clock=service.clock)
    qtbot.addWidget(kiosk)
    kiosk.resize(1366, 768)
    kiosk.show()
    _touch_targets_are_big_enough(kiosk)
    kiosk.start_booking()
    form = kiosk.flow.form
    form.time.setTime(QTime(17, 0))
    qtbot.keyClicks(form.energy, "15")
    qtbot.mouseClick(kiosk.show_plans_button, Qt.MouseButton.LeftButton)
    cards = kiosk.flow.plans.cards
    assert len(cards) >= 2
    for card in cards:
        text = card.title.text()
        assert text.startswith(("At the time you asked", "Arrive ")), text
        assert "ACM" not in text and "Plan" not in text
    eco = next(c for c in cards if c.title.text().startswith("Arrive "))
    assert ", save £" in eco.title.text()
    _touch_targets_are_big_enough(kiosk)
    assert kiosk.minimumSizeHint().height() <= 768
    assert kiosk.height() == 768  # the plans did not push the window past the screen


def test_a_newly_loaded_table_fits_at_once(qtbot, service, window_factory):
    """What a person sees on opening a tab: the rows just loaded fit without waiting for the
    once-a-second refit of live changes."""
    window = window_factory()
    bookings = window.bookings
    assert bookings.model.rowCount() == 0
    outcome = service.plan(
        PlanRequest(arrival=NOW + timedelta(hours=1), duration=timedelta(hours=1), energy_kwh=10)
    )
    service.confirm(outcome, outcome.plans[0], DriverDetails("Alexandra Long-Name", None))
    bookings.refresh()
    assert bookings.model.rowCount() == 1
    assert _fits(bookings.table)
