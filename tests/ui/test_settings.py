"""Settings: operator only; station, tariff and Peak On windows saved to the Station row."""

from __future__ import annotations

from decimal import Decimal

from evcms_desktop.store.models import ChargePoint, Station
from evcms_desktop.store.stations import station_calendar
from evcms_desktop.ui.roles import KIOSK_PIN_KEY, Role
from tests.ui.conftest import run


def test_settings_are_locked_for_attendants_and_saved_by_operators(
    qtbot, station, window_factory, qloop
):
    window = window_factory()
    settings = window.settings
    assert not settings.body.isEnabled()
    assert settings.sign_in.isVisibleTo(settings)

    window.session.set_role(Role.OPERATOR)
    assert settings.body.isEnabled()
    settings.name.setText("Harbour Street")
    settings.tariff["energy_price"].setText("0.45")
    settings.peak["Sat"].setText("10:00-12:00")
    settings.peak["Mon"].setText("25:00-26:00")
    assert not settings.save()
    assert "impossible" in settings.peak_error.text()
    assert Station.get().name == "Test Station"

    settings.peak["Mon"].setText("07:00-10:00, 16:00-19:00")
    assert settings.save()
    saved = Station.get()
    assert saved.name == "Harbour Street"
    assert saved.energy_price == Decimal("0.45")
    assert station_calendar(saved).describe()["Sat"] == ["10:00-12:00"]
    assert window.windowTitle().startswith("Harbour Street")

    settings.charger_id.setText("CP-NEW")
    settings.charger_connectors.setValue(1)
    settings.add_charger()
    run(qtbot, settings.task)
    assert ChargePoint.get(ChargePoint.ident == "CP-NEW").connectors.count() == 1
    qtbot.waitUntil(lambda: window.chargers_model.row_for("CP-NEW", 1) is not None)

    settings.kiosk_pin.setText("12ab")
    settings.set_kiosk_pin()
    assert "digits" in settings.kiosk_message.text()
    settings.kiosk_pin.setText("4321")
    settings.set_kiosk_pin()
    run(qtbot, settings.task)
    assert run(qtbot, window.session.credentials.check(KIOSK_PIN_KEY, "4321"))
