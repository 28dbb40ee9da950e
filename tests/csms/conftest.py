"""Fixtures of the central system's tests; the helpers are in tests/csms/helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from evcms_desktop.csms.server import CsmsConfig
from tests.conftest import BOTH_ENGINES, NOW, engine_target
from tests.csms.helpers import FakeClock


@pytest.fixture(params=BOTH_ENGINES)
def db_target(request: pytest.FixtureRequest, db_path: Path) -> str:
    return engine_target(request, db_path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def config(tmp_path: Path) -> CsmsConfig:
    return CsmsConfig(
        data_dir=tmp_path,
        port=0,
        tick_seconds=0.05,
        response_timeout=5,
        probe_features=False,
    )
