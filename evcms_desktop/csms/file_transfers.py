"""Firmware and diagnostics over HTTP(S): the files a charger fetches for UpdateFirmware
and the diagnostics it uploads for GetDiagnostics, on a port of their own.

A small asyncio HTTP/1.1 handler, not a framework: it serves two kinds of paths and
nothing else, one request per connection, with bounded headers, bodies and time.
websockets' `process_request` on the OCPP port was not used because it never reads a
request body (an upload is a PUT or POST with one), and aiohttp or another server
would be a large dependency for two paths.

    GET        /firmware/{token}/{file}      a file of the data directory's firmware/
    PUT, POST  /diagnostics/{token}/{file}   stored in diagnostics/{charger}/

Each URL holds a token issued for one charger and one purpose when the command is sent
(`secrets.token_urlsafe`); a diagnostics token takes one upload. A POST may be
multipart/form-data (the first part with a file is kept). Uploads over
`max_upload_bytes` are refused with 413 before their body is read. What happens is
tracked per charger (`TransferState`) and published as events.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.parser
import email.policy
import logging
import re
import secrets
import shutil
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from ocpp.v16 import call

from evcms_desktop.csms.commands import ERROR, OFFLINE, CommandResult, CommandService
from evcms_desktop.csms.config import Clock
from evcms_desktop.csms.events import EventKind, Publish
from evcms_desktop.csms.protocol import format_timestamp
from evcms_desktop.domain.text import clean_text, log_safe

log = logging.getLogger(__name__)

HEAD_LIMIT = 16 * 1024  # request line and headers
MAX_HEADERS = 64
HEAD_SECONDS = 10.0  # to send the request line and headers
BODY_SECONDS_PER_MB = 30.0  # an upload may take this long per MiB (and at least a minute)
MAX_CONNECTIONS = 32
MAX_GRANTS = 1024
CHUNK = 64 * 1024
FIRMWARE_GRANT = timedelta(days=2)  # after the retrieve date
DIAGNOSTICS_GRANT = timedelta(hours=2)
MAX_FILE_NAME = 100
# The scheme `send` may use for the central system's own URLs (see `resolve_location`).
OWN_FIRMWARE = "evcms:firmware/"
OWN_DIAGNOSTICS = "evcms:diagnostics"

FIRMWARE_FINAL = {"Installed": True, "DownloadFailed": False, "InstallationFailed": False}
DIAGNOSTICS_FINAL = {"UploadFailed": False}

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_file_name(name: str, default: str = "file") -> str:
    """A name that is one plain file in one directory: no path, no hidden file, bounded."""
    base = unquote(name).replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE.sub("_", base).lstrip(".")[:MAX_FILE_NAME].strip("_")
    return cleaned or default


@dataclass(frozen=True)
class Grant:
    ident: str
    purpose: str  # "firmware" or "diagnostics"
    name: str  # the firmware file; for diagnostics the name the charger announced, if any
    expires: datetime


@dataclass(frozen=True)
class TransferStep:
    at: datetime
    what: str  # "firmware" or "diagnostics"
    status: str
    detail: str = ""


@dataclass
class TransferState:
    """One charger's firmware update and diagnostics upload, as far as they have come."""

    firmware_file: str | None = None
    firmware_status: str | None = None
    diagnostics_status: str | None = None
    diagnostics_file: Path | None = None  # the last one received
    steps: list[TransferStep] = field(default_factory=list)

    def add(self, step: TransferStep) -> None:
        self.steps.append(step)
        del self.steps[:-50]


@dataclass(frozen=True)
class ReceivedFile:
    path: Path
    size: int
    received: datetime


class HttpError(Exception):
    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]


# The address a connected charger reached the OCPP port on (None: it is not connected).
LocalAddress = Callable[[str], str | None]


class FileTransfers:
    def __init__(
        self,
        data_dir: Path,
        commands: CommandService,
        local_address: LocalAddress,
        publish: Publish,
        clock: Clock,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
        max_upload_bytes: int = 20 * 1024 * 1024,
    ) -> None:
        self.firmware_dir = data_dir / "firmware"
        self.diagnostics_dir = data_dir / "diagnostics"
        self._commands = commands
        self._local_address = local_address
        self._publish = publish
        self._clock = clock
        self._host = host
        self.port = port
        self.tls = tls
        self.max_upload_bytes = max_upload_bytes
        self._grants: dict[str, Grant] = {}
        self._states: dict[str, TransferState] = {}
        self._server: asyncio.Server | None = None
        self._connections = 0

    # -- listening -------------------------------------------------------------------

    async def start(self) -> None:
        self.firmware_dir.mkdir(parents=True, exist_ok=True)
        self.diagnostics_dir.mkdir(parents=True, exist_ok=True)
        self._server = await asyncio.start_server(
            self._serve, self._host, self.port, ssl=self.tls, limit=HEAD_LIMIT
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info(
            "Firmware and diagnostics served on %s://%s:%d",
            self.scheme,
            self._host,
            self.port,
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    # -- what the console and commands use -------------------------------------------

    def state(self, ident: str) -> TransferState:
        return self._states.setdefault(ident, TransferState())

    def firmware_files(self) -> list[str]:
        """The firmware files an UpdateFirmware may offer, by name."""
        if not self.firmware_dir.is_dir():
            return []
        return sorted(p.name for p in self.firmware_dir.iterdir() if p.is_file())

    def add_firmware(self, source: Path) -> str:
        """Copy a file into the firmware directory; returns its name there."""
        if not source.is_file():
            raise ValueError(f"{source} is not a file")
        name = safe_file_name(source.name, "firmware.bin")
        self.firmware_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, self.firmware_dir / name)
        return name

    def received_files(self, ident: str) -> list[ReceivedFile]:
        """The diagnostics files a charger has uploaded, newest first."""
        folder = self.diagnostics_dir / safe_file_name(ident, "charger")
        if not folder.is_dir():
            return []
        files = []
        for p in folder.iterdir():
            if p.is_file() and not p.name.endswith(".part"):
                stat = p.stat()
                moment = datetime.fromtimestamp(stat.st_mtime, tz=self._clock().tzinfo)
                files.append(ReceivedFile(p, stat.st_size, moment))
        return sorted(files, key=lambda f: f.path.name, reverse=True)

    def location(self, ident: str, purpose: str, name: str, until: datetime) -> str | None:
        """A URL of this server for one charger and purpose (None: the charger is offline)."""
        address = self._local_address(ident)
        if address is None or self._server is None:
            return None
        now = self._clock()
        for token, grant in list(self._grants.items()):
            if grant.expires <= now:
                del self._grants[token]
        while len(self._grants) >= MAX_GRANTS:
            del self._grants[next(iter(self._grants))]
        token = secrets.token_urlsafe(18)
        self._grants[token] = Grant(ident, purpose, name, until)
        host = f"[{address}]" if ":" in address else address
        tail = f"{name}" if purpose == "firmware" else ""
        return f"{self.scheme}://{host}:{self.port}/{purpose}/{token}/{tail}"

    async def update_firmware(
        self, ident: str, name: str, retrieve_at: datetime | None = None, retries: int | None = None
    ) -> CommandResult:
        """UpdateFirmware with a URL of this server for one of its firmware files."""
        if name not in self.firmware_files():
            return CommandResult(ERROR, False, f"there is no firmware file {name!r} to serve")
        retrieve = retrieve_at or self._clock()
        location = self.location(ident, "firmware", name, retrieve + FIRMWARE_GRANT)
        if location is None:
            return self._unreachable(ident)
        self.firmware_sent(ident, name)  # before: the charger may report at once
        result = await self._commands.send(
            ident,
            call.UpdateFirmware(
                location=location, retrieve_date=format_timestamp(retrieve), retries=retries
            ),
        )
        if not result.ok:
            self.state(ident).firmware_status = result.status
            self._step(ident, "firmware", result.status, f"UpdateFirmware: {result.detail}")
        return result

    async def get_diagnostics(self, ident: str) -> CommandResult:
        """GetDiagnostics with a location of this server for the upload."""
        location = self.location(ident, "diagnostics", "", self._clock() + DIAGNOSTICS_GRANT)
        if location is None:
            return self._unreachable(ident)
        self.diagnostics_sent(ident)  # before: the charger may report at once
        result = await self._commands.send(ident, call.GetDiagnostics(location=location))
        if not result.ok:
            self.state(ident).diagnostics_status = result.status
            self._step(ident, "diagnostics", result.status, f"GetDiagnostics: {result.detail}")
        return result

    def _unreachable(self, ident: str) -> CommandResult:
        if self._server is None:
            return CommandResult(ERROR, False, "firmware and diagnostics are not served here")
        return CommandResult(OFFLINE, False, f"{ident} is not connected")

    def resolve_location(self, ident: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """`send`'s `location=evcms:firmware/NAME` or `location=evcms:diagnostics` made a
        URL of this server; any other payload is returned as it is."""
        location = payload.get("location")
        if not isinstance(location, str) or not location.startswith("evcms:"):
            return payload
        if action == "UpdateFirmware" and location.startswith(OWN_FIRMWARE):
            name = location[len(OWN_FIRMWARE) :]
            if name not in self.firmware_files():
                raise ValueError(f"there is no firmware file {name!r} to serve")
            retrieve = self._clock()
            url = self.location(ident, "firmware", name, retrieve + FIRMWARE_GRANT)
            self.firmware_sent(ident, name)
        elif action == "GetDiagnostics" and location == OWN_DIAGNOSTICS:
            url = self.location(ident, "diagnostics", "", self._clock() + DIAGNOSTICS_GRANT)
            self.diagnostics_sent(ident)
        else:
            raise ValueError(
                f"{location!r}: give {OWN_FIRMWARE}FILE for UpdateFirmware or"
                f" {OWN_DIAGNOSTICS} for GetDiagnostics"
            )
        if url is None:
            raise ValueError(self._unreachable(ident).detail)
        return {**payload, "location": url}

    def firmware_sent(self, ident: str, name: str) -> None:
        state = self.state(ident)
        state.firmware_file, state.firmware_status = name, "Requested"
        self._step(ident, "firmware", "Requested", f"UpdateFirmware with {name}")

    def diagnostics_sent(self, ident: str) -> None:
        self.state(ident).diagnostics_status = "Requested"
        self._step(ident, "diagnostics", "Requested", "GetDiagnostics")

    # -- what chargers report --------------------------------------------------------

    def firmware_status(self, ident: str, status: str) -> None:
        """A FirmwareStatusNotification."""
        state = self.state(ident)
        status = clean_text(status, 40) or "?"
        state.firmware_status = status
        name = state.firmware_file or "firmware"
        self._step(ident, "firmware", status, f"{name}: {status}")
        if status in FIRMWARE_FINAL:
            ok = FIRMWARE_FINAL[status]
            self._finished(ident, "firmware", ok, f"{ident}: firmware {name} {status}")

    def diagnostics_status(self, ident: str, status: str) -> None:
        """A DiagnosticsStatusNotification."""
        state = self.state(ident)
        status = clean_text(status, 40) or "?"
        state.diagnostics_status = status
        self._step(ident, "diagnostics", status, f"diagnostics: {status}")
        if status in DIAGNOSTICS_FINAL:
            self._finished(ident, "diagnostics", False, f"{ident}: diagnostics upload failed")

    def _step(self, ident: str, what: str, status: str, detail: str) -> None:
        self.state(ident).add(TransferStep(self._clock(), what, status, detail))
        kind = EventKind.FIRMWARE_STATUS if what == "firmware" else EventKind.DIAGNOSTICS_STATUS
        self._publish(
            kind,
            f"{ident}: {log_safe(detail, 300)}",
            ident,
            data={f"{what}_status": status, "detail": detail},
        )

    def _finished(self, ident: str, what: str, ok: bool, message: str, **data: Any) -> None:
        self._publish(
            EventKind.TRANSFER_FINISHED,
            message,
            ident,
            data={"what": what, "ok": ok, **data},
        )

    # -- HTTP ------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            if self._connections >= MAX_CONNECTIONS:
                raise HttpError(HTTPStatus.SERVICE_UNAVAILABLE, "too many transfers at once")
            self._connections += 1
            try:
                async with asyncio.timeout(HEAD_SECONDS):
                    request = await _read_head(reader)
                status, body = await self._route(request, reader, writer)
            finally:
                self._connections -= 1
        except HttpError as exc:
            log.warning("File transfer from %s refused: %s %s", peer, exc.status, exc.reason)
            status, body = exc.status, exc.reason
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            log.warning("File transfer from %s ended early", peer)
            writer.close()
            return
        if status is not None:
            await _respond(writer, status, body)
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            writer.close()
            await writer.wait_closed()

    def _grant(self, token: str, purpose: str) -> Grant:
        grant = self._grants.get(token)
        if grant is None or grant.purpose != purpose or grant.expires <= self._clock():
            raise HttpError(HTTPStatus.FORBIDDEN, "unknown or expired transfer token")
        return grant

    async def _route(
        self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[HTTPStatus | None, str]:
        parts = request.path.split("?", 1)[0].split("/")
        if len(parts) != 4 or parts[0] != "" or parts[1] not in ("firmware", "diagnostics"):
            raise HttpError(HTTPStatus.NOT_FOUND, "no such path")
        purpose, token, name = parts[1], parts[2], parts[3]
        if purpose == "firmware":
            if request.method not in ("GET", "HEAD"):
                raise HttpError(HTTPStatus.METHOD_NOT_ALLOWED, "firmware is fetched with GET")
            grant = self._grant(token, purpose)
            await self._send_firmware(grant, unquote(name), request.method, writer)
            return None, ""
        if request.method not in ("PUT", "POST"):
            raise HttpError(HTTPStatus.METHOD_NOT_ALLOWED, "diagnostics are sent with PUT or POST")
        grant = self._grant(token, purpose)
        return await self._receive(grant, token, name, request, reader, writer)

    async def _send_firmware(
        self, grant: Grant, name: str, method: str, writer: asyncio.StreamWriter
    ) -> None:
        path = self.firmware_dir / grant.name
        if name != grant.name or not path.is_file():
            self._step(grant.ident, "firmware", "NotServed", f"{name}: no such file to serve")
            raise HttpError(HTTPStatus.NOT_FOUND, "no such firmware file")
        size = path.stat().st_size
        writer.write(
            f"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {size}\r\nConnection: close\r\n\r\n".encode("ascii")
        )
        if method == "GET":
            with path.open("rb") as f:
                while chunk := f.read(CHUNK):
                    writer.write(chunk)
                    await writer.drain()
            self._step(grant.ident, "firmware", "Served", f"{grant.name}: {size} bytes sent")
        await writer.drain()

    async def _receive(
        self,
        grant: Grant,
        token: str,
        name: str,
        request: Request,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> tuple[HTTPStatus, str]:
        headers = request.headers
        if "transfer-encoding" in headers or "content-length" not in headers:
            raise HttpError(HTTPStatus.LENGTH_REQUIRED, "send the upload with a Content-Length")
        text = headers["content-length"]
        if not (text.isascii() and text.isdigit()) or len(text) > 15:
            raise HttpError(HTTPStatus.BAD_REQUEST, "Content-Length is not a number of bytes")
        size = int(text)
        if size > self.max_upload_bytes:
            message = (
                f"{grant.ident}: diagnostics upload of {size} bytes refused"
                f" (at most {self.max_upload_bytes})"
            )
            self._step(grant.ident, "diagnostics", "Refused", message)
            self._finished(grant.ident, "diagnostics", False, message, size=size)
            raise HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "the upload is too large")
        if headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
        seconds = max(60.0, BODY_SECONDS_PER_MB * size / (1024 * 1024))
        async with asyncio.timeout(seconds):
            body = await reader.readexactly(size)
        file_name, content = _upload_content(headers.get("content-type", ""), body, name)
        del self._grants[token]  # one upload per GetDiagnostics
        folder = self.diagnostics_dir / safe_file_name(grant.ident, "charger")
        folder.mkdir(parents=True, exist_ok=True)
        stamp = self._clock().strftime("%Y%m%dT%H%M%SZ")
        name = safe_file_name(file_name, "diagnostics")
        target = folder / f"{stamp}-{name}"
        copy = 1
        while target.exists():
            copy += 1
            target = folder / f"{stamp}-{copy}-{name}"
        partial = target.with_name(target.name + ".part")
        partial.write_bytes(content)
        partial.replace(target)
        state = self.state(grant.ident)
        state.diagnostics_file = target
        message = f"{grant.ident}: diagnostics received, {len(content)} bytes in {target.name}"
        self._step(grant.ident, "diagnostics", "Received", message)
        self._finished(
            grant.ident,
            "diagnostics",
            True,
            message,
            file=str(target),
            size=len(content),
        )
        return HTTPStatus.CREATED, "stored"


async def _read_head(reader: asyncio.StreamReader) -> Request:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        raise HttpError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "headers too large") from None
    lines = head.decode("latin-1").split("\r\n")
    request_line = lines[0].split(" ")
    if len(request_line) != 3 or not request_line[2].startswith("HTTP/1."):
        raise HttpError(HTTPStatus.BAD_REQUEST, "not an HTTP/1.x request")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip() or len(headers) >= MAX_HEADERS:
            raise HttpError(HTTPStatus.BAD_REQUEST, "malformed or too many headers")
        headers[name.strip().lower()] = value.strip()
    return Request(request_line[0], request_line[1], headers)


def _upload_content(content_type: str, body: bytes, name: str) -> tuple[str, bytes]:
    """The file's name and bytes: the body itself, or a multipart form's first file."""
    if not content_type.lower().startswith("multipart/form-data"):
        return unquote(name), body
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode("latin-1") + body
    )
    for part in message.iter_parts():
        filename = part.get_filename()
        if filename:
            payload = part.get_payload(decode=True)
            return filename, payload if isinstance(payload, bytes) else b""
    raise HttpError(HTTPStatus.BAD_REQUEST, "the form holds no file")


async def _respond(writer: asyncio.StreamWriter, status: HTTPStatus, body: str) -> None:
    data = (body + "\n").encode()
    writer.write(
        f"HTTP/1.1 {status.value} {status.phrase}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode("ascii")
        + data
    )
    with contextlib.suppress(ConnectionError):
        await writer.drain()
