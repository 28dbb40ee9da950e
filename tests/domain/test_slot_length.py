"""The slot-length rule: a slot no longer than its energy needs at the least power."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from evcms_desktop.domain.validation import longest_slot, slot_length_error


@pytest.mark.parametrize(
    ("minutes", "energy", "refused"),
    [
        (24 * 60, "0.2", True),  # the outsider's case: 12 min would do at 1 kW
        (12, "0.2", False),
        (13, "0.2", True),
        (90, "1.5", False),
        (91, "1.5", True),
        (24 * 60, "24", False),
        (60, "NaN", False),  # not this rule's to say: the energy check refuses it
    ],
)
def test_a_slot_longer_than_its_energy_needs_at_1_kw_is_refused(minutes, energy, refused):
    error = slot_length_error(timedelta(minutes=minutes), Decimal(energy))
    assert (error is not None) == refused, error
    if refused:
        assert "needs even at 1 kW" in error and "\n" not in error


def test_the_longest_slot_is_the_energy_at_1_kw():
    assert longest_slot(Decimal("0.2")) == timedelta(minutes=12)
    assert longest_slot(Decimal("10")) == timedelta(hours=10)


def test_a_whole_number_of_kwh_is_taken_as_well():
    assert slot_length_error(timedelta(hours=3), 2) is not None  # 2 kWh: 2 h at 1 kW
    assert slot_length_error(timedelta(hours=2), 2) is None
