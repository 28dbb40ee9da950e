"""Who may connect: the charger must be known (or Pending when unknown ones are accepted),
and from security profile 1 it must give its own id and password by HTTP Basic auth.

The password is checked against its Argon2 hash once; a password argon2 accepted is
remembered (as a SHA-256 of hash and password) so that a reconnecting charger does not
cost another Argon2 run.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from websockets.http11 import Request

from evcms_desktop.csms import charger_admin
from evcms_desktop.store.models import ChargePoint, ChargePointState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    refused: HTTPStatus | None  # NOT_FOUND or UNAUTHORIZED; None lets the charger in
    password: str | None = None  # what it offered, kept for a Pending charger's record


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """The user and password of one `Authorization: Basic` header, or None (also when the
    request has two: which one counts would be a guess)."""
    headers = request.headers.get_all("Authorization")
    if len(headers) != 1:
        return None
    header = headers[0]
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


class ChargerAuth:
    def __init__(self, security_profile: int, accept_unknown: bool) -> None:
        self.security_profile = security_profile
        self.accept_unknown = accept_unknown
        self._verified: dict[str, bytes] = {}  # ident -> sha256 of a password argon2 accepted

    async def check(self, ident: str, request: Request, peer: Any) -> Verdict:
        """May `ident` connect with this handshake request?"""
        cp = ChargePoint.get_or_none(ChargePoint.ident == ident)
        known = cp is not None and cp.state != ChargePointState.REMOVED
        if not known and not (self.accept_unknown and cp is None):
            log.warning("Refused unknown charge point %s from %s", ident, peer)
            if self.security_profile == 0:
                return Verdict(HTTPStatus.NOT_FOUND)
            return Verdict(HTTPStatus.UNAUTHORIZED)
        if self.security_profile == 0:
            return Verdict(None)
        credentials = basic_credentials(request)
        if credentials is None or credentials[0] != ident:
            log.warning("Refused %s from %s: no or wrong Basic credentials", ident, peer)
            return Verdict(HTTPStatus.UNAUTHORIZED)
        password = credentials[1]
        if cp is not None and known and not await self.password_ok(cp, password):
            log.warning("Refused %s from %s: wrong password", ident, peer)
            return Verdict(HTTPStatus.UNAUTHORIZED)
        return Verdict(None, password)

    async def password_ok(self, cp: ChargePoint, password: str) -> bool:
        digest = hashlib.sha256(f"{cp.password_hash}\0{password}".encode()).digest()
        remembered = self._verified.get(cp.ident)
        if remembered is not None and hmac.compare_digest(remembered, digest):
            return True
        ok = await asyncio.get_running_loop().run_in_executor(
            None, charger_admin.verify_password, cp.password_hash, password
        )
        if ok:
            self._verified[cp.ident] = digest
        return ok
