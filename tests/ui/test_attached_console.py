"""A console attached to a deployment (PostgreSQL) without a central system of its own:
it sees a node's charger live, and its commands reach that charger through the queue, as
its signed-in operator, whose role the node checks."""

from __future__ import annotations

from dataclasses import replace

import pytest

from evcms_desktop.app.console import AttachError, attach_to, console_commands, follow_sign_in
from evcms_desktop.csms.events import EventBus, EventKind
from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from evcms_desktop.simulator.chargebox import ChargeBox
from evcms_desktop.store import operators
from evcms_desktop.store.bookings import BookingService
from evcms_desktop.store.database import open_database
from evcms_desktop.store.models import ChargePoint, Connector, QueuedCommand, Station
from evcms_desktop.ui.main_window import MainWindow
from evcms_desktop.ui.roles import Role, Session
from tests.conftest import NOW
from tests.csms.helpers import FakeClock, Recorder, book, url
from tests.ui.conftest import run

pytestmark = pytest.mark.postgresql


@pytest.fixture
def deployment(postgresql_url):
    db = open_database(postgresql_url, station_name="Test Station")
    station = Station.get()
    cp = ChargePoint.create(ident="CP-A", station=station)
    Connector.create(charge_point=cp, number=1)
    operators.add_operator("oli", "operator", "operator-pw")
    operators.add_operator("ann", "attendant", "attendant-pw", Station.get())
    yield db, station
    db.close()


def test_an_attached_console_sees_and_commands_a_nodes_charger(
    deployment, qtbot, qloop, credentials, tmp_path
):  # the deployment first: its database outlives the window
    db, station = deployment
    clock = FakeClock(NOW)
    config = CsmsConfig(
        data_dir=tmp_path, host="127.0.0.1", port=0, probe_features=False, node="A",
        command_poll_seconds=3600, node_heartbeat_seconds=0.2,
    )  # fmt: skip
    node = CentralSystem(config, db, clock=clock)
    on_node = Recorder(node)
    run(qtbot, node.start())
    console_bus = EventBus()
    with pytest.raises(AttachError, match="Wrong name or password"):
        run(qtbot, attach_to(db, "oli", "guess", console_bus))
    attachment, role = run(qtbot, attach_to(db, "oli", "operator-pw", console_bus))
    assert role.value == "operator"
    attendant, _ = run(qtbot, attach_to(db, "ann", "attendant-pw", EventBus()))
    window = MainWindow(
        BookingService(db, station, clock=clock),
        console_bus,
        Session(credentials),
        commands=attachment.commands,
        clock=clock,
        attached=True,
    )
    qtbot.addWidget(window)
    window.show()
    # It listens nowhere: Settings names the deployment's node, and no listening port.
    settings = window.settings
    assert not settings.server_form.isRowVisible(settings.port)
    assert "this console listens on no port" in settings.listening.text()
    assert "Its nodes: A (since" in settings.listening.text()
    box = ChargeBox("CP-A", url(node), clock=clock, meter_interval=3600)
    try:
        run(qtbot, box.connect())
        assert run(qtbot, box.boot()) == "Accepted"
        # The node's events reach the console by NOTIFY: CP-A is online there.
        qtbot.waitUntil(
            lambda: (row := window.chargers_model.row_for("CP-A", 1)) is not None and row.connected,
            timeout=10_000,
        )

        # The node's OCPP frames reach the console's log, in batches through NOTIFY.
        def logged(action: str) -> bool:
            model = window.ocpp_model
            lines = [model.record(row) for row in range(model.rowCount())]
            return any(line.charge_point == "CP-A" and line.action == action for line in lines)

        qtbot.waitUntil(lambda: logged("BootNotification"), timeout=10_000)
        # Meter values stay on node A; the console reads the latest from the store.
        booking = book(db, station, clock, minutes=30, energy_kwh="8.8")
        tx_id, status = run(qtbot, box.charge(booking.code, connector=1))
        assert status == "Accepted"
        run(qtbot, box.meter(tx_id, seconds=300))
        qtbot.waitUntil(lambda: window.chart.history.has(("CP-A", 1)), timeout=10_000)
        assert window.chargers_model.row_for("CP-A", 1).power_kw is not None
        refused = run(qtbot, attendant.commands.reset("CP-A"))
        assert (refused.status, refused.ok) == ("Refused", False)
        assert "ann (attendant) may not send Reset" in refused.detail
        assert not [e for e in on_node.of(EventKind.OCPP_MESSAGE) if e.message == "out Reset"]
        answer = run(qtbot, attachment.commands.reset("CP-A"))
        assert (answer.status, answer.ok) == ("Accepted", True)
        assert [e for e in on_node.of(EventKind.OCPP_MESSAGE) if e.message == "out Reset"]
        # Whoever signs in at the window is named on the console's commands from then on.
        follow_sign_in(window.session, attachment)
        dialog = window.sign_in()
        assert dialog.named
        dialog.name.setText("ann")
        dialog.password.setText("attendant-pw")
        with qtbot.waitSignal(dialog.accepted, timeout=10_000):
            dialog.ok.click()
        assert window.role_label.text() == "ann (attendant)"
        refused = run(qtbot, attachment.commands.reset("CP-A"))
        assert "ann (attendant) may not send Reset" in refused.detail
    finally:
        window.quit_confirmed = True
        window.close()
        run(qtbot, box.close())
        run(qtbot, attendant.stop())
        run(qtbot, attachment.stop())
        run(qtbot, node.stop())


def test_a_nodes_own_console_names_its_signed_in_operator_on_routed_commands(
    deployment, qtbot, qloop, credentials, tmp_path
):
    """A console running node B's central system commands a charger held by node A through
    the queue, with the name of whoever signed in at it, which node A checks."""
    db, _station = deployment
    clock = FakeClock(NOW)
    config = CsmsConfig(
        data_dir=tmp_path, host="127.0.0.1", port=0, probe_features=False, node="A",
        command_poll_seconds=3600, node_heartbeat_seconds=0.2,
    )  # fmt: skip
    node_a = CentralSystem(config, db, clock=clock)
    node_b = CentralSystem(replace(config, node="B", data_dir=tmp_path / "b"), db, clock=clock)
    on_a = Recorder(node_a)
    run(qtbot, node_a.start())
    run(qtbot, node_b.start())
    box = ChargeBox("CP-A", url(node_a), clock=clock, meter_interval=3600)
    session = Session(credentials)
    commands = console_commands(node_b, session)
    try:
        run(qtbot, box.connect())
        assert run(qtbot, box.boot()) == "Accepted"
        qtbot.waitUntil(lambda: node_b.reachable("CP-A"), timeout=10_000)
        session.sign_in_as("ann", Role.ATTENDANT)
        refused = run(qtbot, commands.reset("CP-A"))
        assert (refused.status, refused.ok) == ("Refused", False)
        assert "ann (attendant) may not send Reset" in refused.detail
        assert not [e for e in on_a.of(EventKind.OCPP_MESSAGE) if e.message == "out Reset"]
        session.sign_in_as("oli", Role.OPERATOR)
        answer = run(qtbot, commands.reset("CP-A"))
        assert (answer.status, answer.ok) == ("Accepted", True)
        assert QueuedCommand.select().where(QueuedCommand.operator == "oli").count() == 1
    finally:
        run(qtbot, box.close())
        run(qtbot, node_b.stop())
        run(qtbot, node_a.stop())
