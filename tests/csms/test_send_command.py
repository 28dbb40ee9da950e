"""`evcms-desktop send`: every 1.6 message a central system may send, from the command
line of another process, through the database's command queue to a running central
system and the simulated charger it holds, and the answer back as JSON."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import peewee
import pytest

from evcms_desktop.app.cli import main
from evcms_desktop.csms.command_queue import CSMS_ACTIONS
from evcms_desktop.csms.events import EventKind
from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from evcms_desktop.domain.roles import Role
from evcms_desktop.simulator.chargebox import ChargeBox
from evcms_desktop.store import command_queue, operators
from evcms_desktop.store.command_queue import CommandOutcome
from evcms_desktop.store.models import ChargingTransaction, CommandState, QueuedCommand, Station
from evcms_desktop.store.stations import add_station
from tests.csms.helpers import FakeClock, Recorder, book, run, running, url
from tests.csms.test_csms_cli import ENV

PROFILE = json.dumps(
    {
        "chargingProfileId": 41,
        "stackLevel": 1,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {
            "chargingRateUnit": "W",
            "startSchedule": "2026-12-01T06:00:00Z",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7400}],
        },
    }
)
LOCAL_LIST = json.dumps(
    [
        {
            "idTag": "K7QX4M9ZTP",
            "idTagInfo": {"status": "Accepted", "expiryDate": "2026-12-01T08:00:00Z"},
        }
    ]
)


async def send(db_target: str, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "evcms_desktop",
        "--db",
        db_target,
        "--log-level",
        "WARNING",
        "send",
        *args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def _console_reset(operator: str) -> CommandOutcome:
    """A soft Reset of CP-A queued from a console by `operator`, once a node has answered it."""
    command_id = command_queue.enqueue(
        "CP-A", "Reset", {"type": "Soft"}, requested_by="console", operator=operator
    )
    while (outcome := command_queue.outcome(command_id)) is None:
        await asyncio.sleep(0.02)
    return outcome


@pytest.mark.timeout(600)  # nineteen processes of the command line, on a shared machine
def test_every_action_from_the_command_line(
    db, db_target, station, clock: FakeClock, config: CsmsConfig
):
    config.command_poll_seconds = 0.05
    (config.data_dir / "firmware").mkdir()
    (config.data_dir / "firmware" / "fw.bin").write_bytes(b"firmware 2")
    booking = book(db, station, clock)
    cs = CentralSystem(config, db, clock=clock)
    tried: list[str] = []

    async def scenario() -> ChargeBox:
        async with running(cs):
            box = ChargeBox("CP-A", url(cs), clock=clock, meter_interval=3600)
            await box.connect()
            assert await box.boot() == "Accepted"

            async def ok(action: str, *fields: str) -> dict:
                code, out, err = await send(db_target, "CP-A", action, *fields)
                assert (code, err) == (0, ""), (action, out, err)
                tried.append(action)
                return json.loads(out)

            async def refused(action: str, *fields: str) -> tuple[dict | None, str]:
                code, out, err = await send(db_target, "CP-A", action, *fields)
                assert code == 1, (action, out, err)
                assert len(err.splitlines()) == 1 and "Traceback" not in err
                tried.append(action)
                return (json.loads(out) if out else None), err

            answer = await ok("GetConfiguration", 'key=["HeartbeatInterval", "Nope"]')
            assert answer["configurationKey"][0]["key"] == "HeartbeatInterval"
            assert answer["unknownKey"] == ["Nope"]
            assert (await ok("ChangeConfiguration", "key=HeartbeatInterval", "value=120")) == {
                "status": "Accepted"
            }
            assert box.configuration["HeartbeatInterval"][0] == "120"
            assert (await ok("ClearCache"))["status"] == "Accepted"
            assert (await ok("TriggerMessage", "requestedMessage=Heartbeat"))["status"] == (
                "Accepted"
            )
            answer, err = await refused("DataTransfer", "vendorId=com.example", "data=hello")
            assert answer == {"status": "UnknownVendorId"}
            assert "UnknownVendorId" in err
            await ok(
                "ReserveNow",
                "connectorId=2",
                "expiryDate=2026-12-01T07:00:00Z",
                "idTag=SOMEONE",
                "reservationId=7",
            )
            await ok("CancelReservation", "reservationId=7")
            await ok("ChangeAvailability", "connectorId=2", "type=Inoperative")
            assert box.connectors[2].status == "Unavailable"
            assert (await ok("UnlockConnector", "connectorId=2"))["status"] == "Unlocked"
            await ok("SetChargingProfile", "connectorId=1", f"csChargingProfiles={PROFILE}")
            assert [p["charging_profile_id"] for p in box.connectors[1].profiles] == [41]
            schedule = await ok("GetCompositeSchedule", "connectorId=1", "duration=3600")
            assert schedule["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 7400
            await ok("ClearChargingProfile", "id=41")
            assert box.connectors[1].profiles == []
            await ok(
                "SendLocalList",
                "listVersion=3",
                "updateType=Full",
                f"localAuthorizationList={LOCAL_LIST}",
            )
            assert list(box.local_list) == ["K7QX4M9ZTP"]
            assert (await ok("GetLocalListVersion")) == {"listVersion": 3}
            box.diagnostics_size = 0
            answer, err = await refused("GetDiagnostics", "location=http://127.0.0.1:9/up")
            assert answer == {}
            assert "no diagnostics" in err
            box.diagnostics_size = 100
            answer = await ok("GetDiagnostics", "location=evcms:diagnostics")
            assert answer == {"fileName": "CP-A-diagnostics.log"}
            await ok(
                "UpdateFirmware",
                "location=evcms:firmware/fw.bin",
                "retrieveDate=2026-12-01T06:00:00Z",
            )
            transfers = cs.transfers.state("CP-A")
            for _ in range(1000):
                if transfers.firmware_status == "Installed" and box.uploaded_diagnostics:
                    break
                await asyncio.sleep(0.01)
            assert box.firmware == b"firmware 2"
            assert len(cs.transfers.received_files("CP-A")) == 1
            await ok("RemoteStartTransaction", f"idTag={booking.code}", "connectorId=1")
            for _ in range(500):
                if ChargingTransaction.select().exists():
                    break
                await asyncio.sleep(0.01)
            tx = ChargingTransaction.get()
            await ok("RemoteStopTransaction", f"transactionId={tx.id}")
            assert (await ok("Reset", "type=Soft"))["status"] == "Accepted"
            await box.close()
            return box

    run(scenario(), timeout=240)
    assert sorted(set(tried)) == sorted(CSMS_ACTIONS)
    commands = list(QueuedCommand.select())
    assert len(commands) == len(tried)
    assert {c.state for c in commands} == {CommandState.DONE}
    assert all(c.claimed_by for c in commands)


def test_offline_charger_and_bad_input_are_one_line(
    db, db_target, station, config: CsmsConfig, capsys
):
    config.command_poll_seconds = 0.05
    cs = CentralSystem(config, db)

    async def scenario() -> list[tuple[int, str, str]]:
        async with running(cs):
            return [
                await send(db_target, "CP-B", "Reset", "type=Soft"),
                await send(db_target, "CP-A", "Reset", "type=Sideways"),
                await send(db_target, "CP-A", "Reset", "kind=Soft"),
                await send(db_target, "CP-A", "MakeCoffee"),
                await send(db_target, "CP-Z", "ClearCache"),
                await send(db_target, "CP-A", "GetConfiguration", "key=[oops"),
            ]

    results = run(scenario(), timeout=120)
    errors = [err.strip() for _, _, err in results]
    assert [code for code, _, _ in results] == [1] * len(results)
    assert all(len(e.splitlines()) == 1 for e in errors), errors
    assert errors[0] == "evcms-desktop: CP-B is not connected"
    assert "PropertyConstraintViolation" in errors[1]
    assert "has no field 'kind'" in errors[2]
    assert "not a 1.6 message to a charger" in errors[3]
    assert "No charger has the id 'CP-Z'" in errors[4]
    assert "not a JSON value" in errors[5]


def test_no_central_system_running_is_said_in_one_line(db, db_target, station, capsys):
    db.close()
    assert main(["--db", db_target, "send", "CP-A", "ClearCache", "--timeout", "0.3"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        "evcms-desktop: No central system took the command in 0.3 s"
        " (is one running on this database?)."
    )
    assert QueuedCommand.get().state == CommandState.FAILED


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "inf"])
def test_timeout_must_be_a_positive_number(db_target, timeout, capsys):
    with pytest.raises(SystemExit):
        main(["--db", db_target, "send", "CP-A", "ClearCache", "--timeout", timeout])


def test_send_follows_a_firmware_update_and_a_diagnostics_upload(
    db, db_target, station, clock: FakeClock, config: CsmsConfig
):
    config.command_poll_seconds = 0.05
    config.max_upload_bytes = 1000
    (config.data_dir / "firmware").mkdir()
    (config.data_dir / "firmware" / "fw-3.bin").write_bytes(b"firmware 3")
    cs = CentralSystem(config, db, clock=clock)

    async def scenario() -> list[tuple[int, str, str]]:
        async with running(cs):
            box = ChargeBox("CP-A", url(cs), clock=clock, meter_interval=3600)
            await box.connect()
            assert await box.boot() == "Accepted"
            firmware = await send(
                db_target,
                "CP-A",
                "UpdateFirmware",
                "location=evcms:firmware/fw-3.bin",
                "retrieveDate=2026-12-01T06:00:00Z",
                "--follow",
                "60",
            )
            box.diagnostics_size = 5000
            diagnostics = await send(
                db_target, "CP-A", "GetDiagnostics", "location=evcms:diagnostics", "--follow", "60"
            )
            await box.close()
            return [firmware, diagnostics]

    (code, out, err), (d_code, d_out, d_err) = run(scenario(), timeout=180)
    assert (code, err) == (0, ""), (out, err)
    lines = out.splitlines()
    assert lines[0] == "{}"
    steps = [line.split(" ", 1)[1] for line in lines[1:]]
    assert steps[0] == "CP-A: UpdateFirmware with fw-3.bin"
    assert "CP-A: fw-3.bin: Downloading" in steps
    assert steps[-1] == "CP-A: firmware fw-3.bin Installed"
    assert d_code == 1
    assert d_err.strip() == (
        "evcms-desktop: CP-A: diagnostics upload of 5000 bytes refused (at most 1000)"
    )
    assert '"fileName": "CP-A-diagnostics.log"' in d_out


def test_the_node_refuses_a_queued_command_the_operators_role_may_not_send(
    db, station, clock: FakeClock, config: CsmsConfig
):
    """An attached console queues a command with its signed-in operator; the node that
    holds the charger checks that operator's role before it sends anything."""
    config.command_poll_seconds = 0.05
    operators.add_operator("ann", "attendant", "attendant-pw", Station.get())
    operators.add_operator("oli", "operator", "operator-pw")
    cs = CentralSystem(config, db, clock=clock)
    log = Recorder(cs)

    async def scenario() -> list[CommandOutcome]:
        async with running(cs):
            box = ChargeBox("CP-A", url(cs), clock=clock, meter_interval=3600)
            await box.connect()
            assert await box.boot() == "Accepted"
            refused = await _console_reset("ann")
            sent_before = [e for e in log.of(EventKind.OCPP_MESSAGE) if e.message == "out Reset"]
            accepted = await _console_reset("oli")
            await box.close()
            assert sent_before == []  # nothing reached the charger for ann
            return [refused, accepted]

    ann, oli = run(scenario())
    assert (ann.state, ann.status) == (CommandState.FAILED, "Refused")
    assert ann.detail == "ann (attendant) may not send Reset"
    assert (oli.state, oli.status) == (CommandState.DONE, "Accepted")
    assert operators.sign_in("oli", "operator-pw") is Role.OPERATOR
    assert operators.sign_in("oli", "attendant-pw") is None


def test_a_command_names_a_real_operator_or_is_the_systems(
    db, db_target, station, clock: FakeClock, config: CsmsConfig, capsys
):
    """Once a database has operators, a queued command without one (a `send` without
    --as, a row written by hand) is refused where it is executed, and nothing reaches the
    charger; a node's own work (system) is sent without an operator; an operator is a
    real row, not any name. A database without operators (a station PC's file) trusts
    its command line."""
    config.command_poll_seconds = 0.05
    cs = CentralSystem(config, db, clock=clock)
    log = Recorder(cs)

    async def answer(**asker: object) -> CommandOutcome:
        command_id = command_queue.enqueue("CP-A", "Reset", {"type": "Soft"}, "test", **asker)
        while (outcome := command_queue.outcome(command_id)) is None:
            await asyncio.sleep(0.02)
        return outcome

    def resets() -> int:
        return len([e for e in log.of(EventKind.OCPP_MESSAGE) if e.message == "out Reset"])

    async def scenario() -> dict[str, CommandOutcome | int]:
        async with running(cs):
            box = ChargeBox("CP-A", url(cs), clock=clock, meter_interval=3600)
            await box.connect()
            assert await box.boot() == "Accepted"
            seen: dict[str, CommandOutcome | int] = {"station PC": await answer()}
            operators.add_operator("oli", "operator", "operator-pw")
            before = resets()
            seen["no operator"] = await answer()
            seen["sent for nobody"] = resets() - before
            seen["system"] = await answer(system=True)
            seen["oli"] = await answer(operator="oli")
            await box.close()
            return seen

    seen = run(scenario())
    assert seen["station PC"].status == "Accepted"
    assert (seen["no operator"].state, seen["no operator"].status) == (
        CommandState.FAILED,
        "Refused",
    )
    assert seen["no operator"].detail.startswith("no operator asked for it; this database")
    assert seen["sent for nobody"] == 0
    assert seen["system"].status == "Accepted"
    assert seen["oli"].status == "Accepted"
    with pytest.raises(peewee.IntegrityError):  # not an operator: the database refuses it
        command_queue.enqueue("CP-A", "Reset", {"type": "Soft"}, "test", operator="mallory")
    # `send` without --as, on a database with operators: one line, nothing queued.
    queued = QueuedCommand.select().count()
    assert main(["--db", db_target, "send", "CP-A", "Reset", "type=Soft"]) == 1
    assert capsys.readouterr().err == (
        "evcms-desktop: This database has operators: sign in with --as NAME"
        " (--password - reads the password from stdin).\n"
    )
    assert QueuedCommand.select().count() == queued


def test_the_node_refuses_a_command_for_a_charger_of_another_site_than_the_operators(
    db, station, clock: FakeClock, config: CsmsConfig
):
    """An operator bound to one site may not command another site's charger: the node that
    holds the charger refuses it, whatever the console that queued it showed."""
    config.command_poll_seconds = 0.05
    harbour = add_station("Harbour")
    operators.add_operator("bea", "operator", "operator-pw", harbour)
    operators.add_operator("sam", "operator", "operator-pw", station)
    cs = CentralSystem(config, db, clock=clock)

    async def scenario() -> list[CommandOutcome]:
        async with running(cs):
            box = ChargeBox("CP-A", url(cs), clock=clock, meter_interval=3600)
            await box.connect()
            assert await box.boot() == "Accepted"
            outcomes = [await _console_reset("bea"), await _console_reset("sam")]
            await box.close()
            return outcomes

    bea, sam = run(scenario())
    assert (bea.state, bea.status) == (CommandState.FAILED, "Refused")
    assert bea.detail == "bea works at site 'Harbour'; CP-A is not one of its chargers"
    assert (sam.state, sam.status) == (CommandState.DONE, "Accepted")
