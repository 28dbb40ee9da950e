"""Operators who sign in at a console: their role, their site and password (an Argon2id
hash).

An attendant works at one site; an operator at one site or, without one, at every site.
A console signed in as someone bound to a site shows that site only, and the node that
executes a queued command refuses one for a charger of another site
(`csms.command_queue`)."""

from __future__ import annotations

import functools
import re
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from peewee import fn

from evcms_desktop.domain.attempts import TRIES, lock_after, lock_span, seconds_until
from evcms_desktop.domain.roles import Role
from evcms_desktop.store.models import (
    ChargePoint,
    CommandState,
    Operator,
    QueuedCommand,
    Station,
    utcnow,
)

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,39}")
MAX_NAME = 40
MIN_PASSWORD = 8
MAX_PASSWORD = 200
_hasher = PasswordHasher()


class OperatorError(ValueError):
    """A name, role or password that cannot be taken; said in one line."""


def add_operator(name: str, role: str, password: str, site: Station | None = None) -> Operator:
    """Add an operator; an attendant must have a `site`, an operator without one works at
    every site."""
    if not NAME.fullmatch(name):
        raise OperatorError(
            f"{name[:40]!r} is not an operator name (1 to 40 letters, digits, . _ @ -)."
        )
    if role not in {r.value for r in Role}:
        raise OperatorError(f"{role[:20]!r} is not a role; one of: attendant, operator.")
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise OperatorError(f"The password must have {MIN_PASSWORD} to {MAX_PASSWORD} characters.")
    if role == Role.ATTENDANT and site is None:
        raise OperatorError("An attendant works at one site: name it with --site.")
    if Operator.get_or_none(Operator.name == name) is not None:
        raise OperatorError(f"An operator named {name!r} exists already.")
    return Operator.create(name=name, role=role, password_hash=_hasher.hash(password), site=site)


class SignInLocked(OperatorError):
    """Too many wrong passwords in a row for this operator: nothing is checked for a while."""


def list_operators() -> list[Operator]:
    return list(Operator.select().order_by(Operator.name))


def _found(name: str) -> Operator:
    found = Operator.get_or_none(Operator.name == name[:40])
    if found is None:
        raise OperatorError(f"No operator is named {name[:40]!r}.")
    return found


def remove_operator(name: str) -> None:
    """Remove someone who signs in; refused while a command they asked is still waiting
    for a charger. The commands they asked before keep their name (`requested_by`)."""
    found = _found(name)
    with Operator._meta.database.atomic():
        asked = QueuedCommand.select().where(QueuedCommand.operator == found.name)
        waiting = asked.where(
            QueuedCommand.state.in_([CommandState.QUEUED.value, CommandState.SENT.value])
        ).count()
        if waiting:
            raise OperatorError(
                f"{found.name} has {waiting} command(s) still waiting for a charger:"
                " remove them once those are answered."
            )
        QueuedCommand.update(
            requested_by=fn.COALESCE(QueuedCommand.requested_by, found.name), operator=None
        ).where(QueuedCommand.operator == found.name).execute()
        Operator.delete().where(Operator.name == found.name).execute()


def change_operator(
    name: str, *, role: str | None = None, site: Station | None = None, every_site: bool = False
) -> Operator:
    """A new role and/or site for an operator (`every_site`: no site of their own); an
    attendant keeps one site."""
    found = _found(name)
    if role is not None:
        if role not in {r.value for r in Role}:
            raise OperatorError(f"{role[:20]!r} is not a role; one of: attendant, operator.")
        found.role = role
    if site is not None:
        found.site = site
    elif every_site:
        found.site = None
    if found.role == Role.ATTENDANT and found.site_id is None:
        raise OperatorError("An attendant works at one site: name it with --site.")
    found.save()
    return found


def set_password(name: str, password: str) -> None:
    """A new password; it also lifts a lock from wrong sign-ins (whoever sets it vouches)."""
    found = _found(name)
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise OperatorError(f"The password must have {MIN_PASSWORD} to {MAX_PASSWORD} characters.")
    Operator.update(
        password_hash=_hasher.hash(password), wrong_sign_ins=0, locked_until=None
    ).where(Operator.name == found.name).execute()


def sign_in(name: str, password: str, now: datetime | None = None) -> Role | None:
    """The operator's role if the password is theirs; None otherwise. Each wrong password
    counts on the operator (`count_sign_in`); while they are locked the password is not
    checked (SignInLocked)."""
    now = now or utcnow()
    if left := seconds_locked(name, now):
        raise SignInLocked(locked_text(name, left))
    matches = password_matches(stored_hash(name), password)
    count_sign_in(name, matches, now)
    return role_of(name) if matches else None


def locked_text(name: str, seconds: int) -> str:
    return f"Too many wrong sign-ins for {name[:40]!r}: try again in {lock_span(seconds)}."


def seconds_locked(name: str, now: datetime) -> int:
    """Whole seconds the operator stays locked after wrong passwords; 0 when open."""
    found = Operator.get_or_none(Operator.name == name[:40])
    return 0 if found is None else seconds_until(found.locked_until, now)


def count_sign_in(name: str, matched: bool, now: datetime) -> int | None:
    """Count a sign-in on the operator, wherever it was typed (a console, the command
    line): a right one clears the wrong ones; after TRIES wrong in a row they are locked,
    each lock twice as long as the one before, up to LONGEST_LOCK. The tries left before
    the lock (0: it just locked); None for a name nobody has."""
    with Operator._meta.database.atomic():
        found = Operator.get_or_none(Operator.name == name[:40])
        if found is None:
            return None
        if matched:
            Operator.update(wrong_sign_ins=0).where(Operator.name == found.name).execute()
            return TRIES
        wrong = found.wrong_sign_ins + 1
        if wrong < TRIES:
            Operator.update(wrong_sign_ins=wrong).where(Operator.name == found.name).execute()
            return TRIES - wrong
        Operator.update(
            wrong_sign_ins=0,
            locks=found.locks + 1,
            locked_until=now + lock_after(found.locks),
        ).where(Operator.name == found.name).execute()
        return 0


def any_operator() -> bool:
    """Whether anyone has been added with `operators add` (then consoles sign in by name,
    and every command a person queues must name one)."""
    return Operator.select().exists()


def stored_hash(name: str) -> str | None:
    found = Operator.get_or_none(Operator.name == name[:40])
    return None if found is None else str(found.password_hash)


def password_matches(digest: str | None, password: str) -> bool:
    """Whether `password` is the one hashed in `digest`; slow (Argon2id), so a console runs
    it off its GUI thread. It reads no database. A name nobody has (`digest` None) costs a
    check against a dummy hash, so that names cannot be found by timing."""
    if not password or len(password) > MAX_PASSWORD:
        return False
    try:
        return _hasher.verify(digest or _dummy_hash(), password) and digest is not None
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash("no operator has this password")


def role_of(name: str) -> Role | None:
    """The stored role of an operator; None for a name nobody has (or a damaged role)."""
    found = Operator.get_or_none(Operator.name == name[:40])
    if found is None:
        return None
    try:
        return Role(found.role)
    except ValueError:
        return None


def site_of(name: str) -> int | None:
    """The id of the one site an operator works at; None for every site (or nobody)."""
    found = Operator.get_or_none(Operator.name == name[:40])
    return None if found is None else found.site_id


def site_refusal(name: str, charger: str) -> str | None:
    """Why `name` may not act on `charger` (another site's, or one no site holds); None
    if they may."""
    site = site_of(name)
    if site is None:
        return None
    row = ChargePoint.get_or_none(ChargePoint.ident == charger[:48])
    if row is not None and row.station_id == site:
        return None
    where = Station.get_by_id(site).name
    return f"{name[:40]} works at site {where!r}; {charger[:48]} is not one of its chargers"
