"""Meter readings: an OCPP sampled value (measurand, value, unit, phase) as the energy
register in Wh, the power in kW or the state of charge in %, and a session's energy.

One decoding for the central system's live path, the chart's read-back and the tables.
Per-phase samples are skipped: a charger that sends L1, L2 and L3 also sends the total
(or the total is what the register says), and a phase's power is not the connector's.
"""

from __future__ import annotations

import enum
import math
import re
from decimal import Decimal

ENERGY_REGISTER = "Energy.Active.Import.Register"  # OCPP 1.6's default measurand
POWER_IMPORT = "Power.Active.Import"
SOC = "SoC"
WH_PER_KWH = Decimal(1000)


# An OCPP decimal number: ASCII digits only (Python's float() also takes "１１００", other
# scripts' digits, "1_000", surrounding spaces, "nan" and "inf").
_ASCII_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")


def ascii_number(text: object) -> float | None:
    """`text` as a float if it is a decimal number in ASCII, else None."""
    if not isinstance(text, str) or len(text) > 64 or not _ASCII_NUMBER.fullmatch(text):
        return None
    return float(text)


class Quantity(enum.Enum):
    ENERGY_WH = "energy_wh"
    POWER_KW = "power_kw"
    SOC = "soc"


def decode_sample(
    measurand: str | None, value: str, unit: str | None = None, phase: str | None = None
) -> tuple[Quantity, float] | None:
    """What one sampled value says, or None when it is per phase, another measurand, or
    not a finite number."""
    if phase is not None:
        return None
    measurand = measurand or ENERGY_REGISTER
    if measurand not in (ENERGY_REGISTER, POWER_IMPORT, SOC):
        return None
    number = ascii_number(value)
    if number is None or not math.isfinite(number):
        return None
    if measurand == ENERGY_REGISTER:
        return Quantity.ENERGY_WH, number * 1000 if unit == "kWh" else number
    if measurand == POWER_IMPORT:
        return Quantity.POWER_KW, number if unit == "kW" else number / 1000
    return Quantity.SOC, number


def session_energy_kwh(register_wh: float | None, meter_start_wh: float) -> Decimal | None:
    """The energy a session has delivered: the register's last reading since its start
    (never below zero), or None before any reading."""
    if register_wh is None:
        return None
    delivered = Decimal(repr(float(register_wh))) - Decimal(repr(float(meter_start_wh)))
    return max(delivered, Decimal(0)) / WH_PER_KWH
