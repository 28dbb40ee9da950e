"""Connector assignment: a car holds its connector for its whole window.

Bookings keep the connector the booking service gave them when it is free for their window;
the others take the free connector that became free last (best fit), which is optimal for
interval colouring when windows are handled in order of start.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from datetime import datetime

from evcms_desktop.schedule.model import ScheduleBooking, Unmet


def assign_connectors(
    bookings: Sequence[ScheduleBooking], connector_ids: Sequence[int]
) -> tuple[dict[Hashable, int], list[Unmet]]:
    free_from: dict[int, datetime | None] = dict.fromkeys(connector_ids)
    assigned: dict[Hashable, int] = {}
    unmet: list[Unmet] = []
    for booking in sorted(bookings, key=lambda b: (b.earliest, b.latest)):
        wanted = booking.connector_id
        if wanted in free_from and _is_free(free_from[wanted], booking):
            chosen: int | None = wanted
        else:
            candidates = [c for c in connector_ids if _is_free(free_from[c], booking)]
            chosen = max(
                candidates,
                key=lambda c: (free_from[c] is not None, free_from[c] or booking.earliest),
                default=None,
            )
        if chosen is None:
            unmet.append(
                Unmet(
                    booking.id,
                    "no connector is free for its whole window",
                    float(booking.energy_kwh),
                )
            )
            continue
        assigned[booking.id] = chosen
        free_from[chosen] = booking.latest
    return assigned, unmet


def _is_free(free_from: datetime | None, booking: ScheduleBooking) -> bool:
    return free_from is None or free_from <= booking.earliest
