"""Application settings kept in the `Setting` key/value table."""

from __future__ import annotations

from typing import Any

from evcms_desktop.store.models import Setting

SERVER_KEY = "server"


def read_setting(key: str, default: Any = None) -> Any:
    row = Setting.get_or_none(Setting.key == key)
    return default if row is None or row.value is None else row.value


def write_setting(key: str, value: Any) -> None:
    Setting.insert(key=key, value=value).on_conflict_replace().execute()


def server_settings() -> dict[str, Any]:
    """The listener options saved from the console's Settings (port, TLS, profile, ...)."""
    return dict(read_setting(SERVER_KEY, {}))
