"""Named operators sign in to the console itself (name and password, checked against the
store's operators), on both engines: the window takes their role and shows their name,
wrong tries lock the sign-in for a while, and sign-out goes back to attendant. A store
without operators keeps the station's one operator password."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from evcms_desktop.app.cli import build_parser, config_from_args
from evcms_desktop.app.config import AppConfig
from evcms_desktop.app.console import AttachError, _attached_sites
from evcms_desktop.domain.attempts import TRIES
from evcms_desktop.store import operators
from evcms_desktop.store.bookings import BookingService
from evcms_desktop.store.models import ChargePoint, Connector, Station
from evcms_desktop.store.stations import add_station
from evcms_desktop.ui.dialogs.sign_in import SignInDialog
from evcms_desktop.ui.main_window import MainWindow
from evcms_desktop.ui.roles import Role, Session
from tests.conftest import BOTH_ENGINES, NOW, engine_target
from tests.ui.conftest import FakeCommands


@pytest.fixture(params=BOTH_ENGINES)
def db_target(request: pytest.FixtureRequest, db_path: Path) -> str:
    return engine_target(request, db_path)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self):
        return self.now


@pytest.fixture
def named(station):
    operators.add_operator("oli", "operator", "operator-pw")
    operators.add_operator("ann", "attendant", "attendant-pw", Station.get())


def _window(qtbot, service, bus, credentials, clock, commands=None) -> MainWindow:
    window = MainWindow(service, bus, Session(credentials, clock=clock), commands, clock=clock)
    qtbot.addWidget(window)
    window.show()
    return window


def _sign_in(qtbot, dialog: SignInDialog, name: str, password: str, signal=None) -> None:
    dialog.name.setText(name)
    dialog.password.setText(password)
    with qtbot.waitSignal(signal or dialog.accepted, timeout=10_000):
        dialog.ok.click()


def test_a_named_operator_signs_in_and_out_and_wrong_tries_lock(
    qtbot, qloop, named, service, bus, credentials
):
    clock = Clock()
    window = _window(qtbot, service, bus, credentials, clock)
    assert window.role_label.text() == "Attendant"
    dialog = window.sign_in()
    assert dialog.named and dialog.name.isVisibleTo(dialog)
    assert dialog.windowTitle() == "Sign in"

    # A wrong password, and a name nobody has, say the same.
    _sign_in(qtbot, dialog, "oli", "not-it", dialog.failed)
    assert dialog.error.text() == f"Wrong name or password. {TRIES - 1} tries left."
    _sign_in(qtbot, dialog, "nobody", "operator-pw", dialog.failed)
    assert dialog.error.text() == f"Wrong name or password. {TRIES - 2} tries left."
    for _ in range(TRIES - 2):
        _sign_in(qtbot, dialog, "oli", "guess-again", dialog.failed)
    assert dialog.error.text() == "Too many wrong sign-ins: try again in 60 s."
    # Locked: even the right password is not checked, in a new dialog too.
    dialog.name.setText("oli")
    dialog.password.setText("operator-pw")
    dialog.ok.click()
    assert dialog.task is None or dialog.task.done()
    assert not window.session.is_operator and dialog.isVisible()
    dialog.reject()
    again = window.sign_in()
    assert again.error.text() == "Too many wrong sign-ins: try again in 60 s."

    clock.now += timedelta(seconds=61)
    _sign_in(qtbot, again, "oli", "operator-pw")
    assert window.session.role is Role.OPERATOR
    assert window.session.operator == "oli"
    assert window.role_label.text() == "oli (operator)"
    assert window.sign_out_action.isVisible() and not window.sign_in_action.isVisible()

    window.sign_out_action.trigger()
    assert (window.session.role, window.session.operator) == (Role.ATTENDANT, None)
    assert window.role_label.text() == "Attendant"
    assert window.sign_in_action.isVisible()


def test_a_named_attendant_signs_in_but_may_not_act(qtbot, qloop, named, service, bus, credentials):
    commands = FakeCommands()
    window = _window(qtbot, service, bus, credentials, Clock(), commands)
    window.kiosk_action.trigger()
    dialog = window.actions.dialog
    assert isinstance(dialog, SignInDialog) and dialog.named
    with qtbot.waitSignal(window.actions.denied, timeout=10_000) as denied:
        _sign_in(qtbot, dialog, "ann", "attendant-pw")
    assert denied.args == ["Kiosk mode"]
    assert commands.calls == []
    assert window.session.operator == "ann"
    assert window.role_label.text() == "ann (attendant)"
    assert window.sign_out_action.isVisible()  # ann is signed in, and may sign out


def test_without_operators_the_station_password_still_signs_in(
    qtbot, qloop, station, service, bus, credentials, operator_password
):
    window = _window(qtbot, service, bus, credentials, Clock())
    dialog = window.sign_in()
    assert not dialog.named and not dialog.name.isVisibleTo(dialog)
    assert dialog.windowTitle() == "Operator sign-in"
    dialog.password.setText(operator_password)
    with qtbot.waitSignal(dialog.accepted, timeout=10_000):
        dialog.ok.click()
    assert window.session.is_operator and window.session.operator is None
    assert window.role_label.text() == "Operator"


def test_a_console_signed_in_at_one_site_shows_and_acts_on_that_site_only(
    qtbot, qloop, db_target, db, named, station, bus, credentials
):
    """An attendant bound to a site gets that site's console only (no other site's
    chargers, no "All sites"); naming another --site is refused in one line; at a window
    that shows several sites they cannot sign in."""
    harbour = add_station("Harbour")
    cp = ChargePoint.create(ident="CP-H", station=harbour)
    Connector.create(charge_point=cp, number=1)
    operators.add_operator("hal", "attendant", "attendant-pw", harbour)

    def config(*site: str) -> AppConfig:
        return config_from_args(build_parser().parse_args(["--db", db_target, *site]))

    home, sites = _attached_sites(config(), "hal")
    assert (home.name, sites) == ("Harbour", [])
    assert _attached_sites(config("--site", "Harbour"), "hal")[0].name == "Harbour"
    with pytest.raises(AttachError) as refused:
        _attached_sites(config("--site", station.name), "hal")
    assert str(refused.value) == (
        "hal works at site 'Harbour' only; --site 'Test Station' is refused."
    )
    assert [s.name for s in _attached_sites(config(), "oli")[1]] == ["Test Station", "Harbour"]

    clock = Clock()
    session = Session(credentials, clock=clock)
    session.sites = frozenset({home.id})
    window = MainWindow(BookingService(db, home, clock=clock), bus, session, clock=clock)
    qtbot.addWidget(window)
    window.show()
    idents = {row.ident for row in window.chargers_model.rows()}
    assert idents == {"CP-H"}
    assert not window.sites.several
    _sign_in(qtbot, window.sign_in(), "hal", "attendant-pw")
    assert window.role_label.text() == "hal (attendant)"

    every = Session(credentials, clock=clock)
    every.sites = frozenset({station.id, harbour.id})
    dialog = SignInDialog(every, named=True)
    qtbot.addWidget(dialog)
    dialog.name.setText("hal")
    dialog.password.setText("attendant-pw")
    dialog.ok.click()
    qtbot.waitUntil(lambda: "works at one site only" in dialog.error.text(), timeout=10_000)
    assert every.operator is None and dialog.result() == 0


def test_an_operators_lock_outlives_the_window_and_holds_on_the_command_line(
    qtbot, qloop, named, service, bus, credentials
):
    """Wrong passwords count on the operator in the store, not in one window: a console
    started afresh is still locked, and so is the command line's sign-in."""
    clock = Clock()
    first = _window(qtbot, service, bus, credentials, clock)
    dialog = first.sign_in()
    for _ in range(TRIES - 1):
        _sign_in(qtbot, dialog, "oli", "not-it", dialog.failed)
    # The last wrong try, on the command line's sign-in, locks oli everywhere.
    assert operators.sign_in("oli", "wrong-again", clock()) is None
    restarted = _window(qtbot, service, bus, credentials, clock)
    again = restarted.sign_in()
    again.name.setText("oli")
    again.password.setText("operator-pw")
    again.ok.click()
    qtbot.waitUntil(lambda: "Too many wrong sign-ins for 'oli'" in again.error.text())
    assert again.error.text() == "Too many wrong sign-ins for 'oli': try again in 60 s."
    assert not restarted.session.is_operator
    with pytest.raises(operators.SignInLocked):
        operators.sign_in("oli", "operator-pw", clock())
    clock.now += timedelta(seconds=61)
    assert operators.sign_in("oli", "operator-pw", clock()) is Role.OPERATOR


def test_an_attached_console_signed_out_shows_a_sign_in_screen_and_one_toolbar_action(
    qtbot, qloop, named, service, bus, credentials
):
    """Attached (needs_sign_in) with nobody signed in, the window shows a sign-in screen,
    not the deployment; the toolbar offers either Sign in or Sign out NAME, never both."""
    session = Session(credentials, clock=Clock())
    window = MainWindow(service, bus, session, clock=Clock(), needs_sign_in=True)
    qtbot.addWidget(window)
    window.show()

    def offered() -> list[str]:
        actions = (window.sign_in_action, window.sign_out_action)
        return [a.text() for a in actions if a.isVisible()]

    assert window.pages.currentWidget() is window.signed_out_page
    assert not window.tabs.isVisible() and not window.notifications_dock.isVisible()
    assert window.role_label.text() == "Signed out"
    assert len(offered()) == 1 and "Sign out" not in offered()[0]
    assert not window.new_booking_action.isEnabled()
    _sign_in(qtbot, window.sign_in(), "ann", "attendant-pw")
    assert window.tabs.isVisible() and window.role_label.text() == "ann (attendant)"
    assert offered() == ["Sign out ann"]
    assert window.new_booking_action.isEnabled()
    window.sign_out_action.trigger()
    assert window.pages.currentWidget() is window.signed_out_page
    assert not window.tabs.isVisible() and window.role_label.text() == "Signed out"


def test_a_station_pcs_console_offers_sign_in_or_sign_out_not_both(
    qtbot, qloop, named, service, bus, credentials
):
    """A station PC's console stays open as attendant, with one of the two actions too."""
    station_pc = _window(qtbot, service, bus, credentials, Clock())
    _sign_in(qtbot, station_pc.sign_in(), "ann", "attendant-pw")
    assert station_pc.tabs.isVisible()
    assert [a.isVisible() for a in (station_pc.sign_in_action, station_pc.sign_out_action)] == [
        False,
        True,
    ]
