"""The quote beside the outcome: what a driver booked and was quoted, and what was
delivered and billed, with the reason when they differ."""

from __future__ import annotations

from decimal import Decimal

from evcms_desktop.domain.tariff import format_money


def outcome_reason(
    booked_kwh: Decimal, quoted: Decimal, delivered_kwh: Decimal, billed: Decimal
) -> str:
    """Why the bill is not the quote ("" when it is)."""
    if billed == quoted:
        if delivered_kwh > booked_kwh:
            return "stopped at the booked energy; the last reading's extra not billed"
        return ""
    if delivered_kwh < booked_kwh:
        return f"{booked_kwh - delivered_kwh:.3f} kWh of the booking not delivered"
    if delivered_kwh > booked_kwh:
        return f"{delivered_kwh - booked_kwh:.3f} kWh past the booking billed"
    return "priced differently from the quote"


def quote_beside_bill(
    booked_kwh: Decimal, quoted: Decimal, delivered_kwh: Decimal, billed: Decimal, currency: str
) -> str:
    """A finished booked session in one line: the quote, the bill, and why they differ."""
    reason = outcome_reason(booked_kwh, quoted, delivered_kwh, billed)
    return (
        f"booked {booked_kwh:.2f} kWh, quoted {format_money(quoted, currency)};"
        f" delivered {delivered_kwh:.2f} kWh, billed {format_money(billed, currency)}:"
        f" {reason or 'as quoted'}"
    )


def running_beside_quote(
    booked_kwh: Decimal, quoted: Decimal, delivered_kwh: Decimal, so_far: Decimal, currency: str
) -> str:
    """A running booked session against its booking: energy and cost so far of the quote."""
    text = (
        f"{delivered_kwh:.2f} of {booked_kwh:.2f} kWh,"
        f" {format_money(so_far, currency)} of {format_money(quoted, currency)} quoted"
    )
    return text + ("; booked energy reached" if delivered_kwh >= booked_kwh else "")
