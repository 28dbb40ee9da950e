"""The operator sees trouble at once: profile 0 in the status bar and Settings, the store's
trouble (cannot commit, rows set aside) from the central system's events."""

from __future__ import annotations

import sqlite3

from evcms_desktop.app.console import security_warning
from evcms_desktop.csms.server import CsmsConfig
from evcms_desktop.store.models import MeterValue, utcnow
from evcms_desktop.ui.main_window import MainWindow
from evcms_desktop.ui.roles import Role, Session
from tests.ui.conftest import run


def test_profile_0_is_shown_in_the_status_bar_and_settings(
    qtbot, service, bus, credentials, clock, tmp_path
):
    warning = security_warning(CsmsConfig(data_dir=tmp_path, security_profile=0))
    assert warning and not security_warning(CsmsConfig(data_dir=tmp_path, security_profile=1))
    window = MainWindow(service, bus, Session(credentials), clock=clock, security_warning=warning)
    qtbot.addWidget(window)
    window.show()
    assert window.security_label.isVisible() and "profile 0" in window.security_label.text()
    settings = window.settings
    window.session.set_role(Role.OPERATOR)
    window.tabs.setCurrentWidget(settings)
    assert settings.running_warning.isVisible()
    settings.profile.setCurrentIndex(0)
    assert settings.profile_warning.isVisible()
    settings.profile.setCurrentIndex(1)
    assert not settings.profile_warning.isVisible()


def test_store_trouble_reaches_the_status_bar(qtbot, central, window_factory, db_path, tmp_path):
    window = window_factory()
    assert not window.store_label.isVisible()
    # A row the store refuses (no such charger): set aside, and the operator is told.
    central.writer.add(
        MeterValue,
        {
            "charge_point": 987_654,
            "connector_number": 1,
            "transaction": None,
            "timestamp": utcnow(),
            "measurand": "Energy.Active.Import.Register",
            "value": "1",
            "unit": "Wh",
            "phase": None,
            "context": None,
            "location": None,
        },
        origin="test",
    )
    qtbot.waitUntil(window.store_label.isVisible, timeout=5000)
    assert "1 row(s) set aside" in window.store_label.text()
    assert (tmp_path / "set-aside-rows.jsonl").exists()

    # Another process holds the write lock past the writer's 2 s bound: it cannot commit.
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        central.writer.seen(1, utcnow())
        qtbot.waitUntil(lambda: "cannot commit" in window.store_label.text(), timeout=10_000)
    finally:
        other.execute("COMMIT")
        other.close()
    qtbot.waitUntil(lambda: "set aside" in window.store_label.text(), timeout=10_000)
    run(qtbot, central.writer.flush())
