from datetime import UTC, datetime, timedelta, timezone

import pytest

from evcms_desktop.store.fields import parse_utc
from evcms_desktop.store.models import MeterValue


def test_one_instant_is_stored_as_the_same_utc_text_whatever_its_zone():
    field = MeterValue.timestamp
    utc = datetime(2026, 12, 1, 21, 30, 5, 120, tzinfo=UTC)
    berlin = utc.astimezone(timezone(timedelta(hours=1)))
    assert field.db_value(utc) == "2026-12-01 21:30:05.000120"
    assert field.db_value(berlin) == field.db_value(utc)  # formatted once, then remembered
    assert field.db_value(utc + timedelta(microseconds=1)) == "2026-12-01 21:30:05.000121"
    assert parse_utc(field.db_value(berlin)) == utc


def test_a_naive_time_is_refused_even_when_the_same_wall_time_was_stored():
    field = MeterValue.timestamp
    field.db_value(datetime(2026, 12, 1, 21, 30, tzinfo=UTC))
    with pytest.raises(ValueError, match="naive"):
        field.db_value(datetime(2026, 12, 1, 21, 30))
