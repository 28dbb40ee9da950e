"""Fixtures of the hostile-input tests: a real server on 127.0.0.1 and raw chargers."""

from __future__ import annotations

from pathlib import Path

import pytest

from evcms_desktop.csms.server import CsmsConfig
from tests.conftest import engine_target


@pytest.fixture
def db_target(request: pytest.FixtureRequest, db_path: Path) -> str:
    """SQLite unless a test is parametrised over the engines (indirect=True)."""
    if not hasattr(request, "param"):
        return str(db_path)
    return engine_target(request, db_path)


@pytest.fixture
def config(tmp_path: Path) -> CsmsConfig:
    """Profile 0 unless a test asks for passwords: the frames are what is under test."""
    return CsmsConfig(
        data_dir=tmp_path,
        port=0,
        security_profile=0,
        tick_seconds=0.05,
        response_timeout=5,
        probe_features=False,
    )
