"""Run-time options of the application, from the command line over the built-in defaults."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import platformdirs

from evcms_desktop.store.database import default_database_path

DEFAULT_PORT = 9000
DEFAULT_HOST = "0.0.0.0"  # chargers connect from the site network
DEFAULT_PATH_PREFIX = "/ocpp"


def default_data_dir() -> Path:
    return platformdirs.user_data_path("evcms-desktop", appauthor=False)


@dataclass
class AppConfig:
    db_path: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    path_prefix: str = DEFAULT_PATH_PREFIX
    security_profile: int = 0  # OCPP 1.6 security whitepaper: 0 none, 1 Basic auth, 2 TLS + Basic
    tls_cert: Path | None = None
    tls_key: Path | None = None
    accept_unknown: bool = False  # unknown chargers wait as Pending instead of being refused

    @property
    def data_dir(self) -> Path:
        return self.db_path.parent

    @classmethod
    def defaults(cls) -> AppConfig:
        return cls(db_path=default_database_path())
