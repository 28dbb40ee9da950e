"""Meter decoding: one sampled value to Wh, kW or %, and a session's energy."""

from decimal import Decimal

import pytest

from evcms_desktop.domain.readings import Quantity, decode_sample, session_energy_kwh


@pytest.mark.parametrize(
    ("measurand", "value", "unit", "expected"),
    [
        ("Energy.Active.Import.Register", "1234.5", "Wh", (Quantity.ENERGY_WH, 1234.5)),
        ("Energy.Active.Import.Register", "1.5", "kWh", (Quantity.ENERGY_WH, 1500.0)),
        (None, "42", None, (Quantity.ENERGY_WH, 42.0)),  # OCPP's default measurand and unit
        ("Power.Active.Import", "11000", "W", (Quantity.POWER_KW, 11.0)),
        ("Power.Active.Import", "7.4", "kW", (Quantity.POWER_KW, 7.4)),
        ("Power.Active.Import", "3700", None, (Quantity.POWER_KW, 3.7)),
        ("SoC", "81.5", "Percent", (Quantity.SOC, 81.5)),
    ],
)
def test_units_are_converted(measurand, value, unit, expected):
    assert decode_sample(measurand, value, unit) == expected


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "twelve", ""])
def test_values_that_are_not_finite_numbers_say_nothing(value):
    assert decode_sample("Power.Active.Import", value, "W") is None


def test_per_phase_and_other_measurands_are_skipped():
    assert decode_sample("Power.Active.Import", "3700", "W", phase="L1") is None
    assert decode_sample("Current.Import", "16", "A") is None
    assert decode_sample("Voltage", "230", "V") is None


def test_session_energy_is_the_register_since_the_start_never_negative():
    assert session_energy_kwh(None, 1000) is None
    assert session_energy_kwh(9800.0, 1000) == Decimal("8.8")
    assert session_energy_kwh(900.0, 1000) == Decimal(0)  # a meter replaced mid-session
    assert session_energy_kwh(1000.1, 1000) == Decimal("0.0001")
