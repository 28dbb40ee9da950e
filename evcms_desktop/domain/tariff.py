"""Eq. (8) of the paper: price = Ec * Es + ACM * PDC + SC, with Es = Dh * Pmax * Ceff.

Money is Decimal throughout and rounded to the penny once, on the total. Two rules exist
because the paper's Table 2 needs both: the *original* system charged the availability
surcharge only in Peak On, the *optimized* one applies Table 1 in full (see
docs/reading-the-paper.md, "Two pricing rules").
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

PENNY = Decimal("0.01")


class PricingRule(enum.StrEnum):
    ORIGINAL = "original"
    OPTIMIZED = "optimized"


def availability_cost_multiplier(overlapped: bool, peak_on: bool) -> Decimal:
    """The ACM of Algorithm 2 (Table 1): overlap with other bookings x peak status."""
    if peak_on:
        return Decimal("1") if overlapped else Decimal("0.5")
    return Decimal("0.25") if overlapped else Decimal("0")


def to_decimal(value: Decimal | float | int | str) -> Decimal:
    """Exact Decimal from user or stored input; floats go through str to avoid binary noise."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


@dataclass(frozen=True)
class PriceBreakdown:
    """Components are exact; only the total is rounded (half up, to the penny)."""

    energy_kwh: Decimal
    energy: Decimal
    time_of_use: Decimal
    service: Decimal
    acm: Decimal

    @property
    def total(self) -> Decimal:
        return (self.energy + self.time_of_use + self.service).quantize(PENNY, ROUND_HALF_UP)


@dataclass(frozen=True)
class Tariff:
    """Per-station parameters of Eq. (8). Defaults are the ones that reproduce Table 2."""

    energy_price: Decimal = Decimal("0.50")  # Ec, per kWh
    max_power_kw: Decimal = Decimal("22")  # Pmax
    efficiency: Decimal = Decimal("0.8")  # Ceff
    peak_demand_charge: Decimal = Decimal("3.00")  # PDC, per session
    service_charge: Decimal = Decimal("0.20")  # SC, per session
    currency: str = "GBP"

    def __post_init__(self) -> None:
        for name in ("energy_price", "max_power_kw", "peak_demand_charge", "service_charge"):
            if to_decimal(getattr(self, name)) < 0:
                raise ValueError(f"{name} must not be negative")
        if not Decimal(0) < to_decimal(self.efficiency) <= Decimal(1):
            raise ValueError("efficiency must be in (0, 1]")

    @property
    def charge_rate_kw(self) -> Decimal:
        """Crate = Pmax * Ceff: the rate at which a session at full power fills the battery."""
        return self.max_power_kw * self.efficiency

    def energy_for_duration(self, hours: Decimal) -> Decimal:
        """Es = Dh * Crate: the energy of a full-power session of the given length."""
        return hours * self.charge_rate_kw

    def effective_acm(self, acm: Decimal, peak_on: bool, rule: PricingRule) -> Decimal:
        if rule is PricingRule.ORIGINAL and not peak_on:
            return Decimal("0")
        return acm

    def price(
        self,
        energy_kwh: Decimal,
        acm: Decimal,
        *,
        peak_on: bool = True,
        rule: PricingRule = PricingRule.OPTIMIZED,
    ) -> PriceBreakdown:
        """Price of a session that delivers energy_kwh with the given availability multiplier.

        With the ORIGINAL rule the surcharge applies only when peak_on is true.
        """
        energy_kwh = to_decimal(energy_kwh)
        if energy_kwh < 0:
            raise ValueError("energy must not be negative")
        applied = self.effective_acm(to_decimal(acm), peak_on, rule)
        return PriceBreakdown(
            energy_kwh=energy_kwh,
            energy=self.energy_price * energy_kwh,
            time_of_use=applied * self.peak_demand_charge,
            service=self.service_charge,
            acm=applied,
        )


def format_money(amount: Decimal, currency: str = "GBP") -> str:
    symbol = {"GBP": "£", "EUR": "€", "USD": "$"}.get(currency)
    rounded = amount.quantize(PENNY, ROUND_HALF_UP)
    return f"{symbol}{rounded:,.2f}" if symbol else f"{rounded:,.2f} {currency}"
