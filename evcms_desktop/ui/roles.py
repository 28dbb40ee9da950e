"""Attendant and operator roles; the operator password and kiosk PIN, hashed with Argon2id.

Hashes live in the `Setting` table. Argon2 is memory-hard and takes tens of milliseconds,
so hashing and checking run in the loop's executor, never on the UI path.
"""

from __future__ import annotations

import asyncio
import logging

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from PySide6.QtCore import QObject, Signal

from evcms_desktop.domain.roles import Role
from evcms_desktop.store.settings import read_setting, write_setting

__all__ = ["Credentials", "Role", "Session"]

log = logging.getLogger(__name__)

OPERATOR_KEY = "operator_password_hash"
KIOSK_PIN_KEY = "kiosk_pin_hash"
MIN_PASSWORD_LENGTH = 8


class Credentials:
    """Stored secrets and their checks (the slow parts are coroutines run in a thread)."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()

    @staticmethod
    def has_operator_password() -> bool:
        return read_setting(OPERATOR_KEY) is not None

    @staticmethod
    def has_kiosk_pin(site: int) -> bool:
        return _kiosk_pin_of(site) is not None

    async def set_secret(self, key: str, secret: str) -> None:
        digest = await asyncio.get_running_loop().run_in_executor(None, self.hasher.hash, secret)
        write_setting(key, digest)

    async def check(self, key: str, secret: str) -> bool:
        return await self._verify(read_setting(key), secret)

    async def _verify(self, digest: str | None, secret: str) -> bool:
        if digest is None or not secret:
            return False

        def verify() -> bool:
            try:
                return self.hasher.verify(digest, secret)
            except (VerificationError, InvalidHashError):
                return False

        return await asyncio.get_running_loop().run_in_executor(None, verify)

    async def check_kiosk_exit(self, secret: str, site: int) -> bool:
        """The site's kiosk PIN: digits, as its touch keypad types them (the kiosk needs
        one). A database from before per-site PINs has one for all sites, still used by a
        site without a PIN of its own."""
        return await self._verify(_kiosk_pin_of(site), secret)


def kiosk_pin_key(site: int) -> str:
    """Where a site's kiosk PIN hash is kept."""
    return f"{KIOSK_PIN_KEY}:{site}"


def _kiosk_pin_of(site: int) -> str | None:
    return read_setting(kiosk_pin_key(site)) or read_setting(KIOSK_PIN_KEY)


class Session(QObject):
    """Who is signed in at the console. Starts as attendant."""

    role_changed = Signal(str)

    def __init__(self, credentials: Credentials, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.credentials = credentials
        self.role = Role.ATTENDANT

    @property
    def is_operator(self) -> bool:
        return self.role is Role.OPERATOR

    def set_role(self, role: Role) -> None:
        if role is not self.role:
            self.role = role
            log.info("Console role is now %s", role.value)
            self.role_changed.emit(role.value)
