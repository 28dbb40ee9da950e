"""The quote beside the outcome: what a driver booked and was quoted, and what was
delivered and billed, with the reason when they differ."""

from __future__ import annotations

from decimal import Decimal


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
