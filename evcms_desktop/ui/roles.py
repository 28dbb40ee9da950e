"""Attendant and operator roles; the operator password and kiosk PIN, hashed with Argon2id.

Hashes live in the `Setting` table. Argon2 is memory-hard and takes tens of milliseconds,
so hashing and checking run in the loop's executor, never on the UI path.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from PySide6.QtCore import QObject, Signal

from evcms_desktop.domain.attempts import WrongAttempts
from evcms_desktop.domain.roles import Role
from evcms_desktop.store import operators
from evcms_desktop.store.kiosk_pin import KIOSK_PIN_KEY, kiosk_pin_key, kiosk_pin_of
from evcms_desktop.store.models import utcnow
from evcms_desktop.store.settings import read_setting, write_setting

__all__ = ["KIOSK_PIN_KEY", "Credentials", "Role", "Session", "kiosk_pin_key"]

log = logging.getLogger(__name__)

OPERATOR_KEY = "operator_password_hash"
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
        return kiosk_pin_of(site) is not None

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
        return await self._verify(kiosk_pin_of(site), secret)


class Session(QObject):
    """Who is signed in at the console. Starts as attendant, with nobody named.

    `operator` is the named operator signed in (see `store.operators`), whose role is the
    window's and whose name goes with every command the console queues; None when the
    station's one operator password was used, or nobody signed in. `attempts` counts wrong
    sign-ins at this console, which lock it for a while after a few.
    """

    role_changed = Signal(str)  # also when the named operator changes

    def __init__(
        self,
        credentials: Credentials,
        parent: QObject | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(parent)
        self.credentials = credentials
        self.role = Role.ATTENDANT
        self.operator: str | None = None
        self.attempts = WrongAttempts(clock)
        # The sites the window shows (None until it is built): someone bound to one site
        # signs in only where that site is all it shows.
        self.sites: frozenset[int] | None = None

    def refuses_site_of(self, name: str) -> str | None:
        """Why `name` may not sign in at this window (it shows more than their one site);
        None if they may."""
        site = operators.site_of(name)
        if site is None or self.sites is None or self.sites == {site}:
            return None
        return f"{name} works at one site only; this console shows others."

    @property
    def is_operator(self) -> bool:
        return self.role is Role.OPERATOR

    def set_role(self, role: Role) -> None:
        if role is not self.role:
            self.role = role
            log.info("Console role is now %s", role.value)
            self.role_changed.emit(role.value)

    def sign_in_as(self, name: str, role: Role) -> None:
        """A named operator signed in: the window takes their role."""
        changed = name != self.operator
        self.operator = name
        log.info("%s signed in at the console (%s)", name, role.value)
        if role is not self.role:
            self.set_role(role)
        elif changed:
            self.role_changed.emit(role.value)

    def sign_out(self) -> None:
        """Back to attendant, nobody named."""
        named, self.operator = self.operator, None
        if named is not None:
            log.info("%s signed out of the console", named)
        if self.role is not Role.ATTENDANT:
            self.set_role(Role.ATTENDANT)
        elif named is not None:
            self.role_changed.emit(self.role.value)
