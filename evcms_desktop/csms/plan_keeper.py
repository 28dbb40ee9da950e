"""The booked plan held at the charger: the plan the driver chose is the contract.

At the start of a booked session a TxProfile limits the connector to the plan's power;
a charger that does not take charging profiles (no SmartCharging) is held by the stop
instead, and the attendant is told. At the booked energy the session is stopped
(RemoteStopTransaction), unless the station lets it continue and bills the extra.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from evcms_desktop.csms.commands import CommandService
from evcms_desktop.csms.events import EventKind, Publish
from evcms_desktop.csms.sessions import OpenTransaction
from evcms_desktop.store.models import Booking
from evcms_desktop.store.stations import continues_past_booked_energy

log = logging.getLogger(__name__)

# Profile ids of the plans, apart from the site schedule's.
PLAN_PROFILE_BASE = 1_000_000
# The booked power's TxProfile; the site schedule's stacks above it (csms.schedule_applier).
PLAN_STACK_LEVEL = 0


def plan_profile(tx_id: int, power_kw: Decimal) -> dict[str, object]:
    """A TxProfile (the wire's camelCase) holding transaction `tx_id` to `power_kw` until
    it ends (no duration: the one period lasts as long as the transaction)."""
    return {
        "chargingProfileId": PLAN_PROFILE_BASE + tx_id % PLAN_PROFILE_BASE,
        "transactionId": tx_id,
        "stackLevel": PLAN_STACK_LEVEL,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": {
            "chargingRateUnit": "W",
            "chargingSchedulePeriod": [
                {"startPeriod": 0, "limit": float(round(power_kw * 1000, 1))}
            ],
        },
    }


class PlanKeeper:
    def __init__(self, commands: CommandService, publish: Publish) -> None:
        self._commands = commands
        self._publish = publish

    async def limit_at_start(self, ident: str, tx: OpenTransaction) -> bool:
        """Send the plan's TxProfile; False when the charger does not take it."""
        if tx.booking_id is None:
            return False
        booking = Booking.get_by_id(tx.booking_id)
        result = await self._commands.set_charging_profile(
            ident, tx.connector, plan_profile(tx.id, booking.power_kw)
        )
        if result.ok:
            log.info(
                "%s #%s: booking %s held to %s kW by a TxProfile",
                ident,
                tx.connector,
                booking.code,
                booking.power_kw,
            )
            return True
        self._publish(
            EventKind.PLAN_NOT_LIMITED,
            f"{ident} #{tx.connector} took no charging profile ({result.status}): booking"
            f" {booking.code} is held by stopping at its {booking.energy_kwh} kWh",
            ident,
            tx.connector,
            data={"transaction_id": tx.id, "booking_code": booking.code, "status": result.status},
        )
        return False

    async def energy_reached(self, ident: str, tx: OpenTransaction) -> None:
        """The booked energy is delivered: tell, and stop unless the station continues."""
        keep_going = continues_past_booked_energy(tx.booking_id)
        self._publish(
            EventKind.BOOKED_ENERGY_REACHED,
            f"Booked energy reached at {ident} #{tx.connector}: {tx.delivered_kwh:.2f} of"
            f" {tx.target_kwh} kWh (booking {tx.booking_code});"
            + (" charging continues and the extra is billed" if keep_going else " stopping"),
            ident,
            tx.connector,
            data={
                "transaction_id": tx.id,
                "booking_code": tx.booking_code,
                "delivered_kwh": str(tx.delivered_kwh),
                "booked_kwh": str(tx.target_kwh),
                "continues": keep_going,
            },
        )
        if keep_going:
            return
        result = await self._commands.remote_stop(ident, tx.id)
        if not result.ok:
            log.warning("Stop at booked energy of %s at %s: %s", tx.id, ident, result.detail)
