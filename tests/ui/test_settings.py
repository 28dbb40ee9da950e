"""Settings: operator only; station, tariff and Peak On windows saved to the Station row."""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QWidget

from evcms_desktop.app.cli import build_parser, config_from_args, main
from evcms_desktop.app.config import csms_config
from evcms_desktop.csms import charger_admin
from evcms_desktop.store.models import ChargePoint, Station, utcnow
from evcms_desktop.store.settings import server_settings
from evcms_desktop.store.stations import station_calendar
from evcms_desktop.ui.roles import Role
from evcms_desktop.ui.views.settings import KIOSK_NOTE
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
    assert "impossible" in settings.field_errors["Mon"].text()
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
    credentials = window.session.credentials
    assert run(qtbot, credentials.check_kiosk_exit("4321", settings.station.id))
    other = Station.create(name="Other Site")  # its kiosk has no PIN yet: not this one's
    assert not credentials.has_kiosk_pin(other.id)
    assert not run(qtbot, credentials.check_kiosk_exit("4321", other.id))


def test_a_frontier_point_becomes_the_site_limit_for_operators_only(
    qtbot, station, window_factory, qloop
):
    from evcms_desktop.schedule import ScheduleProblem
    from evcms_desktop.schedule.milp import MilpOptions
    from evcms_desktop.schedule.optimal import cost_peak_frontier
    from tests.schedule.test_milp import booking

    problem = ScheduleProblem(
        bookings=(booking(1, 15, 17, "17.6"), booking(2, 15, 17, "17.6")),
        connector_ids=(1, 2),
    )
    points = cost_peak_frontier(problem, MilpOptions(time_budget_s=10), levels=[30])
    window = window_factory()
    view = window.analysis.frontier
    view.show_points(points)
    assert view.table.rowCount() == 2
    assert view.table.item(0, 0).text() == "peak 44 kW for +£0.00"
    assert points[1].peak_kw <= 30
    assert view.table.item(1, 0).text() == points[1].label(points[0])
    expected = Decimal(math.ceil(points[1].peak_kw * 10 - 1e-6)) / 10  # up to 0.1 kW
    assert not view.use.isEnabled()
    view.table.selectRow(1)
    view.use.click()  # an attendant: refused, nothing saved
    assert Station.get().site_power_limit_kw is None
    assert "operator" in window.settings.site_limit_hint.text()

    window.session.set_role(Role.OPERATOR)
    view.use.click()
    assert Station.get().site_power_limit_kw == expected
    assert window.settings.site_limit.value() == float(expected)
    assert window.settings.site_limit_hint.text() == (
        f"From the cost–peak frontier: {points[1].label(points[0])}."
    )

    window.settings.site_limit.setValue(0)  # "none"
    assert window.settings.save()
    assert Station.get().site_power_limit_kw is None


def test_a_point_below_the_least_peak_that_meets_everyone_is_set_with_its_bound(
    qtbot, station, window_factory, qloop
):
    from PySide6.QtWidgets import QMessageBox

    from evcms_desktop.schedule import ScheduleProblem
    from evcms_desktop.schedule.milp import MilpOptions
    from evcms_desktop.schedule.optimal import cost_peak_frontier
    from tests.schedule.test_milp import booking

    # Two cars 00:00-01:00: only 44 kW meets both; the sweep adds 40 and 30 kW, each short.
    problem = ScheduleProblem(
        bookings=(booking(1, 0, 1, "17.6"), booking(2, 0, 1, "17.6")), connector_ids=(1, 2)
    )
    points = cost_peak_frontier(problem, MilpOptions(time_budget_s=10))
    assert [p.limit_kw for p in points] == [None, 40.0, 30.0]
    window = window_factory()
    window.session.set_role(Role.OPERATOR)
    view = window.analysis.frontier
    view.show_points(points)
    view.table.selectRow(1)
    view.use.click()
    assert Station.get().site_power_limit_kw is None  # not before it is confirmed
    assert view.confirm_box is not None
    view.confirm_box.button(QMessageBox.StandardButton.Yes).click()
    assert Station.get().site_power_limit_kw == Decimal("40.0")
    hint = window.settings.site_limit_hint.text()
    assert hint == f"From the cost–peak frontier: {points[1].label(points[0])}."
    assert "at least 3.2 kWh short, this schedule" in hint


def test_reading_pings_and_booked_energy_settings_are_saved(qtbot, station, window_factory):
    window = window_factory()
    settings = window.settings
    window.session.set_role(Role.OPERATOR)
    settings.load()
    assert not settings.strict.isChecked() and not settings.continue_past.isChecked()
    assert (settings.ping_interval.value(), settings.ping_timeout.value()) == (60, 60)
    settings.strict.setChecked(True)
    settings.continue_past.setChecked(True)
    settings.ping_interval.setValue(20)
    settings.ping_timeout.setValue(0)
    assert settings.save()
    saved = server_settings()
    assert (saved["strict"], saved["ping_interval"], saved["ping_timeout"]) == (True, 20, 0)
    assert Station.get().continue_past_booked_energy  # the site's, not the application's
    config = csms_config(config_from_args(build_parser().parse_args([])), saved)
    assert (config.strict, config.ping_interval, config.ping_timeout) == (True, 20, None)


def _wheel(widget: QWidget, steps: int) -> None:
    """A real wheel event through Qt's dispatch, as a mouse over `widget` sends it."""
    centre = QPointF(widget.rect().center())
    event = QWheelEvent(
        centre,
        QPointF(widget.mapToGlobal(centre.toPoint())),
        QPoint(0, 0),
        QPoint(0, 120 * steps),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, event)


def test_scrolling_the_settings_page_changes_no_value(qtbot, station, window_factory):
    window = window_factory()
    window.show()
    settings = window.settings
    window.session.set_role(Role.OPERATOR)
    window.tabs.setCurrentWidget(settings)
    settings.load()
    before = (settings.ping_interval.value(), settings.profile.currentIndex())
    _wheel(settings.ping_interval, -3)
    _wheel(settings.profile, -1)
    assert (settings.ping_interval.value(), settings.profile.currentIndex()) == before

    settings.ping_interval.setFocus()  # clicked into: the wheel is the user's to turn
    qtbot.waitUntil(settings.ping_interval.hasFocus, timeout=2000)
    _wheel(settings.ping_interval, 2)
    assert settings.ping_interval.value() == before[0] + 2


def test_an_operator_sees_a_lockout_and_lifts_it(qtbot, station, window_factory, qloop):
    until = utcnow() + timedelta(minutes=20)
    ChargePoint.update(locked_until=until).where(ChargePoint.ident == "CP-A").execute()
    window = window_factory()
    settings = window.settings
    window.session.set_role(Role.OPERATOR)
    settings.load_chargers()
    rows = [settings.chargers.item(i).text() for i in range(settings.chargers.count())]
    [row] = [text for text in rows if text.startswith("CP-A ")]
    assert f"LOCKED OUT until {until:%H:%M} UTC" in row
    settings.chargers.setCurrentRow(rows.index(row))
    assert settings.charger_id.text() == "CP-A"
    qtbot.mouseClick(settings.unlock_button, Qt.MouseButton.LeftButton)
    run(qtbot, settings.task)
    assert ChargePoint.get(ChargePoint.ident == "CP-A").locked_until is None
    assert settings.charger_message.text().startswith("Unlocked CP-A")
    assert not any("LOCKED" in settings.chargers.item(i).text() for i in range(len(rows)))
    qtbot.mouseClick(settings.unlock_button, Qt.MouseButton.LeftButton)
    run(qtbot, settings.task)
    assert settings.charger_message.text() == "CP-A was not locked out."


def test_event_retention_and_the_default_profile(qtbot, station, window_factory):
    """A new installation's Settings show profile 1 (saving them kept profile 0 before);
    the event retention is saved and read by the central system, the command line first."""
    window = window_factory()
    settings = window.settings
    window.session.set_role(Role.OPERATOR)
    settings.load()
    assert settings.profile.currentIndex() == 1
    assert settings.event_retention.value() == 90
    settings.event_retention.setValue(30)
    assert settings.save()
    saved = server_settings()
    assert (saved["security_profile"], saved["event_retention_days"]) == (1, 30)
    assert (
        csms_config(config_from_args(build_parser().parse_args([])), saved).event_retention_days
        == 30
    )
    args = build_parser().parse_args(["--event-retention-days", "7"])
    assert csms_config(config_from_args(args), saved).event_retention_days == 7


def test_the_connection_cap_is_a_setting_and_the_command_line_wins(qtbot, station, window_factory):
    """The cap could only be given as --max-connections; Settings had no field for it."""
    window = window_factory()
    settings = window.settings
    window.session.set_role(Role.OPERATOR)
    settings.load()
    assert settings.max_connections.text() == "10000"
    settings.max_connections.setText(" 250 ")
    assert settings.save()
    saved = server_settings()
    assert saved["max_connections"] == 250
    parse = build_parser().parse_args
    assert csms_config(config_from_args(parse([])), saved).max_connections == 250
    given = config_from_args(parse(["--max-connections", "7"]))
    assert csms_config(given, saved).max_connections == 7
    settings.max_connections.setText("1")
    settings.load()
    assert settings.max_connections.text() == "250"
    assert csms_config(config_from_args(parse([])), {"max_connections": "NaN"}).max_connections == (
        10_000
    )


@pytest.mark.parametrize(
    ("field", "text", "says"),
    [
        ("energy_price", "NaN", "not NaN"),
        ("energy_price", "Infinity", "not Infinity"),
        ("energy_price", "1e400", "from 0 to 100"),
        ("energy_price", "-0.5", "from 0 to 100"),
        ("energy_price", "abc", "not a number"),
        ("energy_price", "0.123456", "decimal places"),
        ("max_power_kw", "0", "above 0"),
        ("max_power_kw", "5000", "at most 1000"),
        ("efficiency", "1.5", "at most 1"),
        ("service_charge", "1e6", "from 0 to 10000"),
        ("name", "", "needs a name"),
        ("name", "A\x00B", "control characters"),
        ("timezone", "Mars/Olympus", "not a time zone"),
        ("currency", "POUNDS", "currency code"),
        ("tls_cert", "/no/such/cert.pem", "together"),
        ("max_connections", "0", "1 to 100000 connections"),
        ("max_connections", "100001", "1 to 100000 connections"),
        ("max_connections", "NaN", "not a whole number"),
        ("max_connections", "2.5", "not a whole number"),
        ("max_connections", "１２", "not a whole number"),
        ("Tue", "08:00-07:00", ""),
    ],
)
def test_every_settings_field_is_checked_and_nothing_saved(
    qtbot, station, window_factory, field, text, says
):
    """NaN, Infinity and 1e400 were taken as prices; a bad field now gets its message
    under it and nothing at all is saved."""
    window = window_factory()
    settings = window.settings
    window.session.set_role(Role.OPERATOR)
    settings.load()
    settings.retention.setValue(settings.retention.value() + 1)  # would be saved if valid
    settings.event_retention.setValue(12)
    widgets = {
        "name": settings.name,
        "tls_cert": settings.tls_cert,
        "max_connections": settings.max_connections,
        **settings.tariff,
        **settings.peak,
    }
    if field in ("timezone", "currency"):
        getattr(settings, field).setCurrentText(text)
    else:
        widgets[field].setText(text)
    before = Station.get()
    assert not settings.save()
    error = settings.field_errors[field]
    assert error.isVisibleTo(settings) and says in error.text(), error.text()
    assert [k for k, e in settings.field_errors.items() if e.isVisibleTo(settings)] == [field]
    assert "Nothing saved" in settings.message.text()
    after = Station.get()
    assert (after.name, after.energy_price, after.timezone, after.currency) == (
        before.name, before.energy_price, before.timezone, before.currency
    )  # fmt: skip
    assert "event_retention_days" not in server_settings()
    corrected = {
        "name": "Harbour Street",
        "timezone": "Europe/London",
        "currency": "GBP",
        "max_connections": "500",
    }
    if field in ("timezone", "currency"):
        getattr(settings, field).setCurrentText(corrected[field])
    else:
        widgets[field].setText(corrected.get(field, "0.5" if field in settings.tariff else ""))
    assert settings.save()
    assert not settings.field_errors[field].isVisibleTo(settings)
    assert server_settings()["event_retention_days"] == 12


@pytest.mark.parametrize("ident", ["CP:1", "X" * 49, "CP 1"])
def test_a_charger_id_that_cannot_log_in_is_refused_in_settings(
    qtbot, station, window_factory, qloop, ident
):
    """`CP:1` (never a Basic-auth user name, as ":" ends it) was accepted."""
    window = window_factory()
    settings = window.settings
    window.session.set_role(Role.OPERATOR)
    settings.charger_id.setText(ident)
    settings.add_charger()
    run(qtbot, settings.task)
    assert "not a usable charge point id" in settings.charger_message.text()
    assert not ChargePoint.select().where(ChargePoint.ident == ident).exists()


def test_a_charger_id_with_a_trailing_newline_is_refused():
    """`re.match(...$)` let `CP-1\n` through."""
    with pytest.raises(charger_admin.ChargerAdminError):
        charger_admin.check_ident("CP-1\n")
    assert charger_admin.check_ident("CP-1") == "CP-1"


CURRENCIES = [
    ("eur", "EUR"),
    ("Usd", "USD"),
    (" chf ", "CHF"),
    ("GBP\n", None),
    ("EURO", None),
    ("E1R", None),
    ("ÉUR", None),  # a letter, but not one of A to Z
    ("", None),
]


@pytest.mark.parametrize(("text", "stored"), CURRENCIES)
def test_settings_and_sites_add_take_a_currency_by_one_rule(
    qtbot, station, window_factory, db_target, capsys, text, stored
):
    """Settings upper-cased "eur" while `sites add --currency eur` refused it: both now take
    three letters in either case and store them upper-case, and refuse anything else (under
    the field; in one line on the command line)."""
    window = window_factory()
    settings = window.settings
    window.session.set_role(Role.OPERATOR)
    settings.load()
    settings.currency.setCurrentText(text)
    assert settings.save() is (stored is not None)
    error = settings.field_errors["currency"]
    if stored is None:
        assert error.isVisibleTo(settings) and "is not a currency code" in error.text()
        assert Station.get_by_id(station.id).currency == "GBP"
    else:
        assert not error.isVisibleTo(settings)
        assert Station.get_by_id(station.id).currency == stored

    added = main(["--db", db_target, "--log-level", "WARNING", "sites", "add", "Mars",
                  "--currency", text])  # fmt: skip
    captured = capsys.readouterr()
    mars = Station.get_or_none(Station.name == "Mars")
    if stored is None:
        assert added == 1 and mars is None
        assert len(captured.err.splitlines()) == 1 and "is not a currency code" in captured.err
    else:
        assert added == 0 and mars.currency == stored


def test_signing_out_leaves_no_typed_secret_in_settings(qtbot, station, window_factory, qloop):
    """A charger's password stayed in its field after Add, and a half-typed kiosk PIN and
    the last operator's messages after they signed out, for the next person at the PC."""
    window = window_factory()
    settings = window.settings
    window.session.set_role(Role.OPERATOR)
    settings.charger_id.setText("CP-NEW")
    settings.charger_password.setText("a-charger-secret-16")
    settings.add_charger()
    run(qtbot, settings.task)
    assert settings.charger_message.text() == "Added CP-NEW."
    assert settings.charger_password.text() == ""
    settings.charger_password.setText("another-secret-1234")
    settings.kiosk_pin.setText("12")
    settings.set_kiosk_pin()
    assert "digits" in settings.kiosk_message.text()
    window.session.sign_out()
    assert settings.charger_password.text() == settings.kiosk_pin.text() == ""
    assert settings.kiosk_message.text() == KIOSK_NOTE
