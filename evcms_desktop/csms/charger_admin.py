"""Adding, approving, removing and unlocking chargers, and their Basic-auth passwords.

A charger's password is a 16-40 character machine secret (OCPP 1.6 security whitepaper),
not a person's password: it is stored as PBKDF2-HMAC-SHA256 with a per-charger salt and
a low iteration count, about a millisecond, so that a thousand chargers reconnecting at
once after a restart are checked in a second or two. A secret that long is not guessed by
trying a word list against a stolen hash, so a slow memory-hard hash would only slow the
restart. Argon2 hashes from before are still accepted (`needs_rehash` says to replace them).

Used by the command line and by the console's settings; plain functions on the store.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from evcms_desktop.domain.validation import (
    CHARGE_POINT_ID_RULE,
    connector_power_kw,
    is_charge_point_id,
)
from evcms_desktop.store import nodes
from evcms_desktop.store.deviations import deviation_totals
from evcms_desktop.store.models import (
    ChargePoint,
    ChargePointState,
    Connector,
    Station,
)
from evcms_desktop.store.stations import default_station, of_site

# OCPP 1.6 security whitepaper: the AuthorizationKey is 16 to 40 characters.
PASSWORD_MIN, PASSWORD_MAX = 16, 40
MAX_CONNECTORS = 16

PBKDF2_SCHEME = "pbkdf2-sha256"
PBKDF2_ITERATIONS = 1_000
_argon2 = PasswordHasher()


class ChargerAdminError(ValueError):
    """A request the operator has to correct; the message says how."""


@dataclass(frozen=True)
class ChargerInfo:
    ident: str
    state: str
    connectors: int
    has_password: bool
    connected: bool
    vendor: str | None
    model: str | None
    last_seen_at: datetime | None
    strict: bool | None = None  # None: the central system's setting
    timezone: str | None = None  # None: the station's
    locked_until: datetime | None = None  # refused after repeated wrong passwords
    deviations: dict[str, int] = field(default_factory=dict)  # tolerated, by kind


def check_ident(ident: str) -> str:
    """A charger's id: an OCPP identity that is also a Basic-auth user name (no ":"),
    the whole of it (a trailing newline included)."""
    if not is_charge_point_id(ident):
        raise ChargerAdminError(
            f"{ident[:60]!r} is not a usable charge point id: {CHARGE_POINT_ID_RULE}"
        )
    return ident


def check_max_power(value: Decimal | int | str) -> Decimal:
    try:
        return connector_power_kw(value)
    except ValueError as exc:
        raise ChargerAdminError(str(exc)) from None


def check_password(password: str) -> str:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise ChargerAdminError(
            f"A charger password has {PASSWORD_MIN} to {PASSWORD_MAX} characters"
            " (OCPP 1.6 security whitepaper)."
        )
    return password


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _pbkdf2(password: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)


def hash_password(password: str) -> str:
    """`pbkdf2-sha256$<iterations>$<salt>$<digest>` (base64) of a checked password."""
    check_password(password)
    salt = secrets.token_bytes(16)
    digest = _pbkdf2(password, salt, PBKDF2_ITERATIONS)
    return f"{PBKDF2_SCHEME}${PBKDF2_ITERATIONS}${_b64(salt)}${_b64(digest)}"


def _verify_pbkdf2(password_hash: str, password: str) -> bool:
    try:
        scheme, iterations, salt, digest = password_hash.split("$")
        rounds = int(iterations)
        expected = base64.b64decode(digest, validate=True)
        salt_bytes = base64.b64decode(salt, validate=True)
    except ValueError:  # also binascii.Error
        return False
    if scheme != PBKDF2_SCHEME or not 1 <= rounds <= 1_000_000:
        return False
    return hmac.compare_digest(_pbkdf2(password, salt_bytes, rounds), expected)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Does `password` match? A PBKDF2 hash costs about a millisecond, an old Argon2 one
    far more: call it off the event loop."""
    if not password_hash or len(password) > PASSWORD_MAX:
        return False
    if password_hash.startswith("$argon2"):
        try:
            return _argon2.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
    return _verify_pbkdf2(password_hash, password)


def needs_rehash(password_hash: str) -> bool:
    """Is this a hash of an older scheme or cost, to be replaced at the next login?"""
    return not password_hash.startswith(f"{PBKDF2_SCHEME}${PBKDF2_ITERATIONS}$")


# Unknown ids are checked against this, so that they cost what known ones cost.
DUMMY_HASH = hash_password(secrets.token_urlsafe(24))


def _get(ident: str, station: Station | None = None) -> ChargePoint:
    """The charger with this id, if `station` may act on it: one of its own, or a Pending
    one no site has yet. Without a station: any site's (the operator's view)."""
    cp = ChargePoint.get_or_none(ChargePoint.ident == ident)
    if cp is None or cp.state == ChargePointState.REMOVED:
        raise ChargerAdminError(f"No charger has the id {ident!r}.")
    if station is not None and cp.station_id not in (station.id, None):
        raise ChargerAdminError(f"{ident} is not a charger of {station.name}.")
    return cp


def add_charger(
    ident: str,
    password: str | None = None,
    station: Station | None = None,
    connectors: int = 2,
    max_power_kw: Decimal | int | str = 22,
) -> ChargePoint:
    """Register an approved charger with `connectors` connectors (a removed id comes back)."""
    check_ident(ident)
    if not 1 <= connectors <= MAX_CONNECTORS:
        raise ChargerAdminError(f"A charger has 1 to {MAX_CONNECTORS} connectors.")
    max_power_kw = check_max_power(max_power_kw)
    password_hash = hash_password(password) if password else None
    station = station or default_station()
    with ChargePoint._meta.database.atomic():
        cp = ChargePoint.get_or_none(ChargePoint.ident == ident)
        if cp is not None and cp.state != ChargePointState.REMOVED:
            raise ChargerAdminError(f"A charger with the id {ident!r} exists already.")
        if cp is None:
            cp = ChargePoint.create(ident=ident, station=station, password_hash=password_hash)
        else:
            cp.state = ChargePointState.APPROVED.value
            cp.password_hash = password_hash
            cp.station = station
            cp.save()
        for number in range(1, connectors + 1):
            connector, created = Connector.get_or_create(
                charge_point=cp, number=number, defaults={"max_power_kw": max_power_kw}
            )
            if not created:
                connector.max_power_kw = max_power_kw
                connector.save()
    return cp


def set_password(ident: str, password: str, station: Station | None = None) -> None:
    cp = _get(ident, station)
    cp.password_hash = hash_password(password)
    cp.save(only=[ChargePoint.password_hash])


def approve(ident: str, station: Station, connectors: int | None = None) -> ChargePoint:
    """Approve a Pending charger into `station` (the site that approves it; the other
    sites no longer see it); it is accepted at its next BootNotification."""
    cp = _get(ident, station)
    if cp.state != ChargePointState.PENDING:
        raise ChargerAdminError(f"Charger {ident!r} is not waiting for approval.")
    with ChargePoint._meta.database.atomic():
        cp.state = ChargePointState.APPROVED.value
        cp.station = station
        cp.save(only=[ChargePoint.state, ChargePoint.station])
        for number in range(1, (connectors or 0) + 1):
            Connector.get_or_create(charge_point=cp, number=number)
    return cp


def remove(ident: str, station: Station | None = None) -> None:
    """Refuse the charger from now on; its history (transactions, meter values) stays."""
    cp = _get(ident, station)
    cp.state = ChargePointState.REMOVED.value
    cp.save(only=[ChargePoint.state])


def check_site(ident: str, station: Station | None) -> None:
    """Refuse a charger that `station` may not act on (another site's); None: any."""
    _get(ident, station)


def list_chargers(
    include_removed: bool = False,
    station: Station | None = None,
    node_expiry: timedelta = timedelta(seconds=10),
) -> list[ChargerInfo]:
    """The chargers of one site (with the Pending ones no site has yet), or (station None)
    of every site; online is the connection registry's word (see
    `nodes.connected_idents`)."""
    query = ChargePoint.select().order_by(ChargePoint.ident)
    if station is not None:
        query = query.where(of_site(station))
    if not include_removed:
        query = query.where(ChargePoint.state != ChargePointState.REMOVED)
    deviations = deviation_totals()
    online = nodes.connected_idents(node_expiry)
    return [
        ChargerInfo(
            ident=cp.ident,
            state=cp.state,
            connectors=cp.connectors.count(),
            has_password=bool(cp.password_hash),
            connected=cp.ident in online,
            vendor=cp.vendor,
            model=cp.model,
            last_seen_at=cp.last_seen_at,
            strict=cp.strict,
            timezone=cp.timezone,
            locked_until=cp.locked_until,
            deviations=deviations.get(cp.ident, {}),
        )
        for cp in query
    ]


def unlock(ident: str, station: Station | None = None) -> bool:
    """Lift a charger's lockout (a running central system sees it at the next attempt);
    False when it was not locked."""
    cp = _get(ident, station)
    if cp.locked_until is None:
        return False
    cp.locked_until = None
    cp.save(only=[ChargePoint.locked_until])
    return True


def create_pending(ident: str, password_hash: str | None, max_pending: int) -> ChargePoint:
    """Record an unknown charger as Pending, with no site until one approves it, unless
    `max_pending` wait already."""
    check_ident(ident)
    # IMMEDIATE: the write lock before the count, so that no other writer's commit can
    # make the count's snapshot stale (SQLite then refuses the insert outright).
    with ChargePoint._meta.database.atomic("IMMEDIATE"):
        waiting = ChargePoint.select().where(ChargePoint.state == ChargePointState.PENDING).count()
        if waiting >= max_pending:
            raise ChargerAdminError(
                f"{waiting} chargers wait for approval already (at most {max_pending});"
                " approve or remove some"
            )
        return ChargePoint.create(
            ident=ident,
            station=None,
            state=ChargePointState.PENDING.value,
            password_hash=password_hash,
        )


def set_strict(ident: str, strict: bool | None, station: Station | None = None) -> None:
    """Read a charger's frames strictly, tolerantly, or (None) as the central system does.
    Applied when it next connects."""
    cp = _get(ident, station)
    cp.strict = strict
    cp.save(only=[ChargePoint.strict])


def set_timezone(ident: str, timezone: str | None, station: Station | None = None) -> None:
    """The time zone of a charger's offset-less times (None: its station's)."""
    cp = _get(ident, station)
    if timezone is not None:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ChargerAdminError(
                f"{timezone!r} is not a time zone (e.g. Europe/Paris)."
            ) from None
    cp.timezone = timezone
    cp.save(only=[ChargePoint.timezone])
