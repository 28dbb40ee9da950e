"""A station console whose central system cannot listen (its port taken by another
program) is still the attendant's console, says why in the status bar, and listens once
Settings give it a free port."""

from __future__ import annotations

import socket

from evcms_desktop.app.config import AppConfig
from evcms_desktop.app.console import StationScreens, start_central
from evcms_desktop.store.database import parse_target
from evcms_desktop.store.settings import SERVER_KEY, write_setting
from evcms_desktop.ui.roles import Role, Session
from tests.ui.conftest import run


def test_a_busy_port_leaves_the_station_console_working_and_settings_can_listen_again(
    qtbot, qloop, db, db_path, service, bus, credentials, tmp_path
):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    busy = taken.getsockname()[1]
    config = AppConfig(parse_target(db_path), host="127.0.0.1", file_port=-1)
    with socket.socket() as probe:  # a port free now, for Settings
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    screens = None
    try:
        write_setting(SERVER_KEY, {"port": busy, "security_profile": 0})
        central, text, url = run(qtbot, start_central(config, db, bus))
        assert central is None
        assert text == (
            f"Not listening on port {busy}: address in use;"
            " change it under Settings > Central system"
        )
        session = Session(credentials)
        screens = StationScreens(
            service, bus, session, central, text, url, listen=lambda: start_central(config, db, bus)
        )
        console = screens.show_console()
        assert console.pages.currentWidget() is console.tabs
        assert console.tabs.count() > 1
        assert console.new_booking_action.isEnabled()
        assert console.role_label.text() == "Attendant"
        assert console.server_label.text() == text
        console.grab().save(str(tmp_path / "busy.png"))

        session.set_role(Role.OPERATOR)  # the station's operator password
        assert console.role_label.text() == "Operator"
        assert console.pages.currentWidget() is console.tabs
        assert console.settings.body.isEnabled()

        console.settings.port.setValue(free)
        assert console.settings.save()
        qtbot.waitUntil(lambda: screens.central is not None, timeout=10_000)
        assert screens.central.port == free
        listening = screens.console
        assert listening is not None and listening is not console
        assert listening.server_label.text().startswith(f"Listening on ws://127.0.0.1:{free}")
        assert listening.actions.commands is not None
    finally:
        taken.close()
        if screens is not None:
            screens.close_all()
            if screens.central is not None:
                run(qtbot, screens.central.stop())
