"""Run-time options: the command line over the console's saved Settings over the defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evcms_desktop.app.log_file import log_file_path, node_log_name
from evcms_desktop.csms.config import CsmsConfig
from evcms_desktop.csms.protocol import DEFAULT_PATH_PREFIX, DEFAULT_PORT
from evcms_desktop.domain.station_settings import saved_max_connections
from evcms_desktop.store.database import DEFAULT_SITE_NAME, DatabaseTarget, default_database_path
from evcms_desktop.store.models import Station
from evcms_desktop.store.settings import (
    DEFAULT_PING,
    DEFAULT_SECURITY_PROFILE,
    ping_seconds,
    retention_days,
)
from evcms_desktop.store.stations import checked_site_name, default_station, find_station

DEFAULT_HOST = "0.0.0.0"  # chargers connect from the site network


@dataclass
class AppConfig:
    """What the command line said; None where it said nothing."""

    database: DatabaseTarget
    site: str | None = None  # the station (site) to work on; None: the first one
    host: str | None = None
    port: int | None = None
    path_prefix: str | None = None
    security_profile: int | None = None  # OCPP 1.6 security whitepaper: 0, 1 or 2
    tls_cert: Path | None = None
    tls_key: Path | None = None
    accept_unknown: bool | None = None  # unknown chargers wait as Pending instead
    strict: bool | None = None  # refuse what the tolerant reading of chargers would repair
    ping_interval: int | None = None  # seconds; 0: no pings
    ping_timeout: int | None = None  # seconds without a pong before a connection is dead
    max_connections: int | None = None  # chargers connected (and handshaking) at most
    file_port: int | None = None  # firmware and diagnostics over HTTP; -1: not served
    event_retention_days: int | None = None  # older events are pruned
    log_file: Path | None = None  # the log file, instead of the data directory's

    @property
    def data_dir(self) -> Path:
        """Where generated files (the self-signed TLS certificate) go: beside an SQLite
        file, else the user's data directory."""
        if self.database.path is not None:
            return self.database.path.parent
        return default_database_path().parent


def log_path(config: AppConfig) -> Path:
    """`--log-file`, else the data directory's log; on PostgreSQL, whose nodes share the
    user's data directory, one file for each node (by host and port)."""
    if config.log_file is not None:
        return config.log_file
    if config.database.path is not None:
        return log_file_path(config.data_dir)
    port = DEFAULT_PORT if config.port is None else config.port
    return log_file_path(config.data_dir, node_log_name(port))


def csms_config(config: AppConfig, saved: Mapping[str, Any]) -> CsmsConfig:
    """The central system's options: each from the command line, else Settings, else default."""

    def pick(name: str, default: Any) -> Any:
        given = getattr(config, name)
        if given is not None:
            return given
        value = saved.get(name)
        return default if value is None else value

    cert, key = pick("tls_cert", None), pick("tls_key", None)
    port = int(pick("port", DEFAULT_PORT))
    # Firmware and diagnostics: the port after the OCPP one by default (any free one
    # when the OCPP port is any free one).
    file_port = pick("file_port", port + 1 if port else 0)
    return CsmsConfig(
        data_dir=config.data_dir,
        host=pick("host", DEFAULT_HOST),
        port=port,
        path_prefix=pick("path_prefix", DEFAULT_PATH_PREFIX),
        # Secure by default: profile 0 (no password) must be chosen explicitly.
        security_profile=int(pick("security_profile", DEFAULT_SECURITY_PROFILE)),
        tls_cert=Path(cert) if cert else None,
        tls_key=Path(key) if key else None,
        accept_unknown=bool(pick("accept_unknown", False)),
        strict=bool(pick("strict", False)),
        ping_interval=ping_seconds(pick("ping_interval", DEFAULT_PING), DEFAULT_PING),
        ping_timeout=ping_seconds(pick("ping_timeout", DEFAULT_PING), DEFAULT_PING),
        max_connections=saved_max_connections(pick("max_connections", None)),
        file_port=None if int(file_port) < 0 else int(file_port),
        event_retention_days=retention_days(pick("event_retention_days", None)),
    )


def selected_site(config: AppConfig) -> Station:
    """The site `--site` names, else the first (a station PC's own)."""
    return find_station(config.site) if config.site else default_station()


def first_site_name(config: AppConfig) -> str:
    """The name a new database's one site gets: the site `--site` names, else the default
    (on either engine; a database that has sites keeps them)."""
    return checked_site_name(config.site) if config.site else DEFAULT_SITE_NAME
