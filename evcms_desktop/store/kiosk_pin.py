"""A site's kiosk PIN (digits, for the kiosk's touch keypad), kept as an Argon2id hash in
the `Setting` table: set in Settings or by `sites set NAME --kiosk-pin`, the same way."""

from __future__ import annotations

from argon2 import PasswordHasher

from evcms_desktop.store.settings import read_setting, write_setting

KIOSK_PIN_KEY = "kiosk_pin_hash"  # a database from before per-site PINs: every site's
PIN_DIGITS = (4, 12)


def kiosk_pin_key(site: int) -> str:
    """Where a site's kiosk PIN hash is kept."""
    return f"{KIOSK_PIN_KEY}:{site}"


def kiosk_pin_of(site: int) -> str | None:
    """The hash of the site's PIN; a database from before per-site PINs has one for all
    sites, still used by a site without a PIN of its own."""
    return read_setting(kiosk_pin_key(site)) or read_setting(KIOSK_PIN_KEY)


def pin_error(pin: str) -> str | None:
    """Why `pin` cannot be a kiosk PIN, in one line; None when it can."""
    low, high = PIN_DIGITS
    if pin.isascii() and pin.isdigit() and low <= len(pin) <= high:
        return None
    return f"A PIN has {low} to {high} digits."


def store_kiosk_pin(site: int, digest: str) -> None:
    write_setting(kiosk_pin_key(site), digest)


def set_kiosk_pin(site: int, pin: str, hasher: PasswordHasher | None = None) -> None:
    """Hash the PIN (Argon2id, as the console does; slow, so not on a GUI thread) and keep
    it as the site's. Raises ValueError for a PIN that is not one."""
    error = pin_error(pin)
    if error is not None:
        raise ValueError(error)
    store_kiosk_pin(site, (hasher or PasswordHasher()).hash(pin))
