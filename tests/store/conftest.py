"""The store's tests run on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import BOTH_ENGINES, engine_target


@pytest.fixture(params=BOTH_ENGINES)
def db_target(request: pytest.FixtureRequest, db_path: Path) -> str:
    return engine_target(request, db_path)
