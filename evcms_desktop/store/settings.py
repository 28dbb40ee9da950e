"""Application settings kept in the `Setting` key/value table."""

from __future__ import annotations

from typing import Any

from evcms_desktop.store.models import Setting

SERVER_KEY = "server"
DEFAULT_PING = 60
MAX_PING_SECONDS = 3600
DEFAULT_SECURITY_PROFILE = 1  # HTTP Basic auth: profile 0 is an explicit choice
DEFAULT_EVENT_RETENTION_DAYS = 90
MAX_EVENT_RETENTION_DAYS = 3650


def read_setting(key: str, default: Any = None) -> Any:
    row = Setting.get_or_none(Setting.key == key)
    return default if row is None or row.value is None else row.value


def write_setting(key: str, value: Any) -> None:
    Setting.insert(key=key, value=value).on_conflict(
        conflict_target=[Setting.key], preserve=[Setting.value]
    ).execute()


def server_settings() -> dict[str, Any]:
    """The listener options saved from the console's Settings (port, TLS, profile, ...)."""
    return dict(read_setting(SERVER_KEY, {}))


def ping_seconds(value: Any, default: int) -> int | None:
    """A saved ping interval or timeout in whole seconds (0: off, read as None); a value
    that is not a number from 0 to an hour is the default."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    if not 0 <= value <= MAX_PING_SECONDS:  # NaN is not in range either
        return default
    return int(value) or None


def retention_days(value: Any) -> int:
    """A saved event retention in whole days (1 to MAX_EVENT_RETENTION_DAYS); anything else
    is the default."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return DEFAULT_EVENT_RETENTION_DAYS
    if not 1 <= value <= MAX_EVENT_RETENTION_DAYS:  # NaN is not in range either
        return DEFAULT_EVENT_RETENTION_DAYS
    return int(value)
