"""Security profiles, TLS, Basic auth, unknown chargers, subprotocol and connection limits."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ocpp.exceptions import SecurityError
from websockets.exceptions import InvalidMessage, InvalidStatus

from evcms_desktop.csms import charger_admin
from evcms_desktop.csms.events import EventKind
from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from evcms_desktop.simulator.chargebox import ChargeBox
from evcms_desktop.store.models import ChargePoint, ChargePointState, ChargingTransaction, Station
from tests.csms.helpers import (
    FakeClock,
    Recorder,
    book,
    exchange,
    raw_connect,
    run,
    running,
    until,
    url,
)

PASSWORD = "correct-horse-battery"


@pytest.fixture
def server_cert(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made here and not by the code under test."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-csms")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def client_context(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


def test_tls_and_basic_auth_session(db, station, clock: FakeClock, config: CsmsConfig, server_cert):
    config.security_profile = 2
    config.tls_cert, config.tls_key = server_cert
    charger_admin.set_password("CP-A", PASSWORD)
    booking = book(db, station, clock)
    cs = CentralSystem(config, db, clock=clock)

    async def scenario() -> int:
        async with running(cs):
            box = ChargeBox(
                "CP-A",
                url(cs, "wss"),
                password=PASSWORD,
                ssl_context=client_context(server_cert[0]),
                clock=clock,
                meter_interval=3600,
            )
            await box.connect()
            assert box._connection.subprotocol == "ocpp1.6"
            assert await box.boot() == "Accepted"
            tx_id, status = await box.charge(booking.code)
            assert status == "Accepted"
            clock.advance(minutes=10)
            await box.meter(tx_id, seconds=600)
            assert await box.stop_transaction(tx_id) == "Accepted"
            await box.close()
            return tx_id

    tx = ChargingTransaction.get_by_id(run(scenario()))
    assert tx.price_total is not None and tx.energy_kwh > 0


def test_plain_connection_to_tls_port_fails(db, station, config: CsmsConfig, server_cert):
    config.security_profile = 2
    config.tls_cert, config.tls_key = server_cert
    charger_admin.set_password("CP-A", PASSWORD)
    cs = CentralSystem(config, db)

    async def scenario() -> None:
        async with running(cs):
            box = ChargeBox("CP-A", url(cs, "ws"), password=PASSWORD, response_timeout=2)
            with pytest.raises(InvalidMessage):
                await asyncio.wait_for(box.connect(), 3)
            assert not cs.connected_ids()

    run(scenario())


def _status_of(exc: InvalidStatus) -> int:
    return exc.response.status_code


@pytest.mark.parametrize(
    ("password", "user"),
    [("wrong-password-123456", "CP-A"), (None, None), (PASSWORD, "CP-B")],
    ids=["wrong-password", "no-credentials", "other-user"],
)
def test_bad_credentials_get_401(db, station, config: CsmsConfig, password, user):
    config.security_profile = 1
    charger_admin.set_password("CP-A", PASSWORD)
    cs = CentralSystem(config, db)

    async def scenario() -> InvalidStatus:
        async with running(cs):
            headers = {}
            if password is not None:
                token = base64.b64encode(f"{user}:{password}".encode()).decode()
                headers["Authorization"] = f"Basic {token}"
            with pytest.raises(InvalidStatus) as caught:
                await raw_connect(cs, "CP-A", additional_headers=headers)
            assert not cs.connected_ids()
            return caught.value

    exc = run(scenario())
    assert _status_of(exc) == 401
    assert exc.response.headers["WWW-Authenticate"].startswith("Basic")


def test_right_password_accepted_twice(db, station, config: CsmsConfig):
    """Each connection is checked; a wrong password after right ones is still refused."""
    config.security_profile = 1
    charger_admin.set_password("CP-A", PASSWORD)
    cs = CentralSystem(config, db)

    async def scenario() -> None:
        async with running(cs):
            for _ in range(2):
                box = ChargeBox("CP-A", url(cs), password=PASSWORD)
                await box.connect()
                assert await box.boot() == "Accepted"
                await box.close()
            wrong = ChargeBox("CP-A", url(cs), password=PASSWORD + "x")
            with pytest.raises(InvalidStatus):
                await wrong.connect()

    run(scenario())


@pytest.mark.parametrize(("profile", "status"), [(0, 404), (1, 401)])
def test_unknown_charge_point_refused(db, station, config: CsmsConfig, profile, status):
    config.security_profile = profile
    cs = CentralSystem(config, db)

    async def scenario() -> int:
        async with running(cs):
            token = base64.b64encode(f"CP-X:{PASSWORD}".encode()).decode()
            with pytest.raises(InvalidStatus) as caught:
                await raw_connect(
                    cs, "CP-X", additional_headers={"Authorization": f"Basic {token}"}
                )
            return _status_of(caught.value)

    assert run(scenario()) == status
    assert ChargePoint.get_or_none(ChargePoint.ident == "CP-X") is None


def test_removed_charge_point_refused(db, station, config: CsmsConfig):
    charger_admin.remove("CP-B")
    cs = CentralSystem(config, db)

    async def scenario() -> int:
        async with running(cs):
            with pytest.raises(InvalidStatus) as caught:
                await raw_connect(cs, "CP-B")
            return _status_of(caught.value)

    assert run(scenario()) == 404


def test_unknown_charger_pending_until_approved(db, station, config: CsmsConfig):
    config.accept_unknown = True
    cs = CentralSystem(config, db)
    recorder = Recorder(cs)

    async def scenario() -> None:
        async with running(cs):
            box = ChargeBox("CP-NEW", url(cs))
            await box.connect()
            assert await box.boot() == "Pending"
            pending = ChargePoint.get(ChargePoint.ident == "CP-NEW")
            assert (pending.state, pending.station_id) == ("pending", None)  # no site yet
            with pytest.raises(SecurityError):
                await box.authorize("ANYTHING")
            await box.heartbeat()  # allowed while Pending
            cs.approve("CP-NEW", Station.get())
            # The central system asks it to boot again (TriggerMessage) and accepts it.
            await recorder.wait_for(EventKind.CHARGER_BOOTED)
            # published while the answer to the new BootNotification is on its way
            await until(lambda: box.boot_status == "Accepted")
            assert await box.authorize("UNKNOWNCODE") == "Invalid"
            await box.close()

    run(scenario())
    assert EventKind.CHARGER_PENDING in recorder.kinds()
    approved = ChargePoint.get(ChargePoint.ident == "CP-NEW")
    assert (approved.state, approved.station_id) == (ChargePointState.APPROVED, station.id)


@pytest.mark.parametrize(
    ("offered", "strict"),
    [(None, True), (["ocpp2.0.1"], False), (["ocpp2.0.1"], True)],
    ids=["none-strict", "other", "other-strict"],
)
def test_subprotocol_ocpp16_required(db, station, config: CsmsConfig, offered, strict):
    """Another subprotocol is always refused; none at all only when read strictly (the
    tolerant case is in test_quirky_frames)."""
    config.strict = strict
    cs = CentralSystem(config, db)

    async def scenario() -> int:
        async with running(cs):
            with pytest.raises(InvalidStatus) as caught:
                await raw_connect(cs, "CP-A", subprotocols=offered)
            return _status_of(caught.value)

    assert run(scenario()) == 400


def test_second_connection_replaces_first(db, station, config: CsmsConfig):
    cs = CentralSystem(config, db)

    async def scenario() -> None:
        async with running(cs):
            first = ChargeBox("CP-A", url(cs))
            await first.connect()
            assert await first.boot() == "Accepted"
            old_session = cs.session("CP-A")
            second = ChargeBox("CP-A", url(cs))
            await second.connect()
            assert await second.boot() == "Accepted"
            assert cs.session("CP-A") is not old_session
            await asyncio.wait_for(first._reader, 5)  # the old link was closed
            assert first._connection.close_code == 1000
            assert cs.is_connected("CP-A")
            await second.heartbeat()
            await second.close()

    run(scenario())
    assert not ChargePoint.get(ChargePoint.ident == "CP-A").connected


def test_connection_cap_answers_503(db, station, config: CsmsConfig):
    config.max_connections = 1
    cs = CentralSystem(config, db)

    async def scenario() -> int:
        async with running(cs):
            first = ChargeBox("CP-A", url(cs))
            await first.connect()
            await first.boot()
            with pytest.raises(InvalidStatus) as caught:
                await raw_connect(cs, "CP-B")
            await first.close()
            return _status_of(caught.value)

    assert run(scenario()) == 503


def test_message_rate_limit(db, station, config: CsmsConfig):
    config.rate_per_second = 1
    config.rate_burst = 3
    cs = CentralSystem(config, db)

    async def scenario() -> list[str]:
        async with running(cs):
            ws = await raw_connect(cs)
            answers = [await exchange(ws, f'[2,"h{i}","Heartbeat",{{}}]') for i in range(5)]
            await asyncio.sleep(1.1)  # refills one token
            answers.append(await exchange(ws, '[2,"later","Heartbeat",{}]'))
            await ws.close()
            return answers

    answers = run(scenario())
    assert [a[0] for a in answers[:3]] == [3, 3, 3]
    assert answers[3][:3] == [4, "h3", "SecurityError"]
    assert answers[5][0] == 3 and answers[5][1] == "later"


def test_self_signed_certificate_generated_on_first_start(
    db, station, tmp_path, config: CsmsConfig
):
    config.security_profile = 2
    charger_admin.set_password("CP-A", PASSWORD)
    cs = CentralSystem(config, db)

    async def scenario() -> None:
        async with running(cs):
            ca = tmp_path / "tls" / "evcms-ca.pem"
            assert ca.exists() and (tmp_path / "tls" / "evcms-server.pem").exists()
            box = ChargeBox(
                "CP-A", url(cs, "wss"), password=PASSWORD, ssl_context=client_context(ca)
            )
            await box.connect()
            assert await box.boot() == "Accepted"
            await box.close()

    run(scenario())


def test_unknown_charger_with_basic_auth_keeps_its_password(db, station, config: CsmsConfig):
    """Under profile 1 an unknown charger may wait as Pending; the password it offered
    becomes its own, so that after approval only that password opens the door."""
    config.security_profile = 1
    config.accept_unknown = True
    cs = CentralSystem(config, db)

    async def scenario() -> int:
        async with running(cs):
            box = ChargeBox("CP-NEW", url(cs), password=PASSWORD)
            await box.connect()
            assert await box.boot() == "Pending"
            await box.close()
            charger_admin.approve("CP-NEW", Station.get())
            box = ChargeBox("CP-NEW", url(cs), password=PASSWORD)
            await box.connect()
            assert await box.boot() == "Accepted"
            await box.close()
            with pytest.raises(InvalidStatus) as caught:
                await ChargeBox("CP-NEW", url(cs), password="another-password-16").connect()
            return _status_of(caught.value)

    assert run(scenario()) == 401
