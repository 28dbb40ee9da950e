"""Firmware and diagnostics over HTTP, end to end on 127.0.0.1: the central system serves a
firmware file that the simulator really downloads, and receives the diagnostics file the
simulator really uploads; statuses tracked to the end, failures and hostile requests."""

from __future__ import annotations

import asyncio
import os

import pytest
from ocpp.v16 import call

from evcms_desktop.csms.events import EventKind
from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from evcms_desktop.simulator.chargebox import ChargeBox
from evcms_desktop.store.models import Event
from tests.csms.helpers import FakeClock, Recorder, run, running, until, url

CHARGER_FIRMWARE_STEPS = ["Downloading", "Downloaded", "Installing", "Installed"]


def _statuses(rec: Recorder, kind: EventKind, key: str) -> list[str]:
    return [e.data[key] for e in rec.of(kind)]


async def _box(cs: CentralSystem, clock: FakeClock) -> ChargeBox:
    box = ChargeBox("CP-A", url(cs), clock=clock, meter_interval=3600)
    await box.connect()
    assert await box.boot() == "Accepted"
    return box


async def _http(port: int, head: str, body: bytes = b"") -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head.encode("latin-1") + body)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    status = int(answer.split(b" ", 2)[1]) if answer else 0
    return status, answer.partition(b"\r\n\r\n")[2]


def test_firmware_is_downloaded_installed_and_tracked(
    db, station, clock: FakeClock, config: CsmsConfig
):
    firmware = os.urandom(300_000)
    (config.data_dir / "firmware").mkdir()
    (config.data_dir / "firmware" / "fw-2.0.bin").write_bytes(firmware)
    cs = CentralSystem(config, db, clock=clock)
    rec = Recorder(cs)

    async def scenario() -> ChargeBox:
        async with running(cs):
            box = await _box(cs, clock)
            assert cs.transfers.firmware_files() == ["fw-2.0.bin"]
            result = await cs.transfers.update_firmware("CP-A", "fw-2.0.bin")
            assert result.ok, result
            await until(lambda: cs.transfers.state("CP-A").firmware_status == "Installed", 20)
            await box.close()
            return box

    box = run(scenario(), timeout=60)
    assert box.firmware == firmware
    assert box.firmware_version == "fw-2.0.bin"
    steps = _statuses(rec, EventKind.FIRMWARE_STATUS, "firmware_status")
    assert steps[0] == "Requested"
    assert [s for s in steps if s in CHARGER_FIRMWARE_STEPS] == CHARGER_FIRMWARE_STEPS
    assert "Served" in steps
    (done,) = rec.of(EventKind.TRANSFER_FINISHED)
    assert done.data["ok"] is True and "fw-2.0.bin Installed" in done.message
    stored = [e.kind for e in Event.select().where(Event.charge_point == "CP-A")]
    assert stored.count("firmware_status") == len(steps)
    assert "transfer_finished" in stored


def test_a_failed_download_ends_in_download_failed(
    db, station, clock: FakeClock, config: CsmsConfig
):
    (config.data_dir / "firmware").mkdir()
    (config.data_dir / "firmware" / "fw.bin").write_bytes(b"x" * 100)
    cs = CentralSystem(config, db, clock=clock)
    rec = Recorder(cs)

    async def scenario() -> ChargeBox:
        async with running(cs):
            box = await _box(cs, clock)
            missing = await cs.transfers.update_firmware("CP-A", "nope.bin")
            assert (missing.ok, missing.detail) == (
                False,
                "there is no firmware file 'nope.bin' to serve",
            )
            # A URL of this server whose token it never issued: 403, the download fails.
            location = cs.transfers.location("CP-A", "firmware", "fw.bin", clock())
            assert location is not None
            forged = location.replace("/firmware/", "/firmware/x")
            answer = await cs.commands.send(
                "CP-A", call.UpdateFirmware(location=forged, retrieve_date="2020-01-01T00:00:00Z")
            )
            assert answer.ok
            await until(lambda: cs.transfers.state("CP-A").firmware_status == "DownloadFailed", 20)
            # What `send` may name instead of a URL: only files that are there.
            for action, location, problem in [
                ("UpdateFirmware", "evcms:firmware/nope.bin", "no firmware file 'nope.bin'"),
                ("UpdateFirmware", "evcms:diagnostics", "give evcms:firmware/FILE"),
                ("Reset", "evcms:firmware/fw.bin", "give evcms:firmware/FILE"),
            ]:
                with pytest.raises(ValueError, match=problem):
                    cs.transfers.resolve_location("CP-A", action, {"location": location})
            resolved = cs.transfers.resolve_location(
                "CP-A", "UpdateFirmware", {"location": "evcms:firmware/fw.bin", "retries": 2}
            )
            assert resolved["retries"] == 2
            assert resolved["location"].startswith(f"http://127.0.0.1:{cs.transfers.port}/")
            with pytest.raises(ValueError, match="CP-B is not connected"):
                cs.transfers.resolve_location(
                    "CP-B", "GetDiagnostics", {"location": "evcms:diagnostics"}
                )
            await box.close()
            return box

    box = run(scenario(), timeout=60)
    assert box.firmware is None
    assert _statuses(rec, EventKind.FIRMWARE_STATUS, "firmware_status")[:2] == [
        "Downloading",
        "DownloadFailed",
    ]
    (done,) = rec.of(EventKind.TRANSFER_FINISHED)
    assert done.data["ok"] is False and "DownloadFailed" in done.message


def test_diagnostics_are_uploaded_stored_and_shown(
    db, station, clock: FakeClock, config: CsmsConfig
):
    cs = CentralSystem(config, db, clock=clock)
    rec = Recorder(cs)

    async def scenario() -> ChargeBox:
        async with running(cs):
            box = await _box(cs, clock)
            result = await cs.transfers.get_diagnostics("CP-A")
            assert result.ok and result.payload["fileName"] == "CP-A-diagnostics.log"
            await until(lambda: cs.transfers.state("CP-A").diagnostics_status == "Uploaded", 20)
            await box.close()
            return box

    box = run(scenario(), timeout=60)
    (received,) = cs.transfers.received_files("CP-A")
    assert received.path.parent == config.data_dir / "diagnostics" / "CP-A"
    assert received.path.name.endswith("-CP-A-diagnostics.log")
    assert received.path.read_bytes() == box.uploaded_diagnostics
    assert received.size == 4096
    assert b"CP-A diagnostics" in received.path.read_bytes()
    assert cs.transfers.state("CP-A").diagnostics_file == received.path
    assert _statuses(rec, EventKind.DIAGNOSTICS_STATUS, "diagnostics_status") == [
        "Requested",
        "Uploading",
        "Received",
        "Uploaded",
    ]
    (done,) = rec.of(EventKind.TRANSFER_FINISHED)
    assert done.data["ok"] is True and done.data["file"] == str(received.path)


def test_an_oversized_upload_is_refused_and_nothing_stored(
    db, station, clock: FakeClock, config: CsmsConfig
):
    config.max_upload_bytes = 10_000
    cs = CentralSystem(config, db, clock=clock)
    rec = Recorder(cs)

    async def scenario() -> None:
        async with running(cs):
            box = await _box(cs, clock)
            box.diagnostics_size = 50_000
            assert (await cs.transfers.get_diagnostics("CP-A")).ok
            await until(lambda: cs.transfers.state("CP-A").diagnostics_status == "UploadFailed", 20)
            await box.close()

    run(scenario(), timeout=60)
    assert cs.transfers.received_files("CP-A") == []
    assert not any((config.data_dir / "diagnostics").rglob("*"))
    refused, failed = rec.of(EventKind.TRANSFER_FINISHED)
    assert refused.data["ok"] is False and "50000 bytes refused (at most 10000)" in refused.message
    assert failed.data["ok"] is False and "upload failed" in failed.message


def test_hostile_requests_are_refused_and_names_sanitised(
    db, station, clock: FakeClock, config: CsmsConfig
):
    config.max_upload_bytes = 1000
    cs = CentralSystem(config, db, clock=clock)

    async def scenario() -> dict[str, int]:
        async with running(cs):
            box = await _box(cs, clock)
            port = cs.transfers.port

            def token() -> str:
                location = cs.transfers.location(
                    "CP-A", "diagnostics", "", clock().replace(year=clock().year + 1)
                )
                assert location is not None
                return location.split("/")[-2]

            codes = {}
            codes["unknown path"], _ = await _http(port, "GET /etc/passwd HTTP/1.1\r\n\r\n")
            codes["traversal"], _ = await _http(
                port, "GET /firmware/x/../../../etc/passwd HTTP/1.1\r\n\r\n"
            )
            codes["bad token"], _ = await _http(port, "GET /firmware/nope/fw.bin HTTP/1.1\r\n\r\n")
            codes["not http"], _ = await _http(port, "HELLO\r\n\r\n")
            codes["huge head"], _ = await _http(
                port, "GET /firmware/a/b HTTP/1.1\r\nX: " + "a" * 20_000 + "\r\n\r\n"
            )
            good = token()
            codes["chunked"], _ = await _http(
                port,
                f"PUT /diagnostics/{good}/d.log HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            )
            codes["get upload"], _ = await _http(
                port, f"GET /diagnostics/{good}/d.log HTTP/1.1\r\n\r\n"
            )
            codes["stored"], _ = await _http(
                port,
                f"PUT /diagnostics/{good}/..%2F..%2F.evil.sh HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
                b"hello",
            )
            codes["token used twice"], _ = await _http(
                port,
                f"PUT /diagnostics/{good}/again.log HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
                b"hello",
            )
            form = (
                b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="box.log"'
                b"\r\nContent-Type: text/plain\r\n\r\nform body\r\n--XyZ--\r\n"
            )
            codes["multipart"], _ = await _http(
                port,
                f"POST /diagnostics/{token()}/ HTTP/1.1\r\nContent-Type: multipart/form-data;"
                f" boundary=XyZ\r\nContent-Length: {len(form)}\r\n\r\n",
                form,
            )
            codes["too large"], _ = await _http(
                port,
                f"PUT /diagnostics/{token()}/big.log HTTP/1.1\r\nContent-Length: 1001\r\n\r\n",
            )
            await box.close()
            return codes

    codes = run(scenario(), timeout=60)
    assert codes == {
        "unknown path": 404,
        "traversal": 404,
        "bad token": 403,
        "not http": 400,
        "huge head": 431,
        "chunked": 411,
        "get upload": 405,
        "stored": 201,
        "token used twice": 403,
        "multipart": 201,
        "too large": 413,
    }
    files = sorted(f.path.name.split("-", 1)[1] for f in cs.transfers.received_files("CP-A"))
    assert files == ["box.log", "evil.sh"]
    folder = config.data_dir / "diagnostics" / "CP-A"
    assert sorted(p.parent for p in config.data_dir.rglob("*.log")) == [folder]
    by_name = {f.path.name.split("-", 1)[1]: f.path for f in cs.transfers.received_files("CP-A")}
    assert by_name["evil.sh"].read_bytes() == b"hello"
    assert by_name["box.log"].read_bytes() == b"form body"
