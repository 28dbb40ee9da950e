"""Placing sessions when a car need not stay on a connector for its whole window.

For "fit" scheduling a booking's window is when its driver *could* be there; the car
takes a connector only for the session the schedule gives it. Choosing contiguous
sessions on connectors is a combinatorial problem, so this part is a heuristic, ahead
of the exact LP over power:

1. bookings in order of least slack first (window slots minus the slots a full-power
   session needs), then earliest window;
2. each takes the full-power session (start, connector) that is cheapest by Table 1
   (the ACM of its slots), then lands on the least loaded slots, then starts earliest;
3. afterwards each session grows, on its connector, into the free time around it inside
   its window (left to right, so neighbours never overlap): the LP then spreads its power.

A booking for which no connector is free long enough inside its window is unmet.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable
from dataclasses import replace

import numpy as np

from evcms_desktop.schedule.model import (
    ScheduleBooking,
    ScheduleProblem,
    Unmet,
    acm_weights,
    horizon,
    slot_grid,
    window_slots,
)


def _window_sums(values: np.ndarray, length: int) -> np.ndarray:
    """Sum of values[s : s + length] for every s with s + length <= len(values)."""
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    return cumulative[length:] - cumulative[:-length]


def place_sessions(problem: ScheduleProblem) -> tuple[list[ScheduleBooking], list[Unmet]]:
    """Bookings narrowed to their session's time and connector, and the ones that do not fit."""
    if not problem.bookings:
        return [], []
    slot = problem.slot
    start, slots = horizon(problem.bookings, slot)
    share = slot_grid(problem.calendar, start, slots, slot)
    k = slot.total_seconds() / 3600 * float(problem.tariff.efficiency)
    connectors = list(problem.connector_ids)
    busy = {c: np.zeros(slots, dtype=bool) for c in connectors}
    load = np.zeros(slots)
    placed: dict[Hashable, tuple[int, int, int]] = {}  # id -> connector, first, last
    unmet: list[Unmet] = []

    def needed(b: ScheduleBooking) -> int:
        return max(1, math.ceil(float(b.energy_kwh) / (float(b.max_power_kw) * k) - 1e-9))

    windows = {b.id: window_slots(b, start, slot) for b in problem.bookings}
    order = sorted(
        problem.bookings,
        key=lambda b: (windows[b.id][1] - windows[b.id][0] - needed(b), windows[b.id][0]),
    )
    for b in order:
        first, last = windows[b.id]
        n = needed(b)
        if last - first < n:
            unmet.append(Unmet(b.id, "its window is too short for its energy", float(b.energy_kwh)))
            continue
        weights = acm_weights(share[first:last], b.overlapped)
        cost = _window_sums(weights, n)
        crowd = _window_sums(load[first:last], n)
        best: tuple[float, float, int, int] | None = None
        for c in connectors:
            free = _window_sums(busy[c][first:last].astype(float), n) == 0
            if not free.any():
                continue
            candidates = np.flatnonzero(free)
            pick = candidates[np.lexsort((candidates, crowd[candidates], cost[candidates]))[0]]
            option = (float(cost[pick]), float(crowd[pick]), int(pick), c)
            if best is None or option[:3] < best[:3]:
                best = option
        if best is None:
            unmet.append(
                Unmet(
                    b.id, "no connector is free long enough inside its window", float(b.energy_kwh)
                )
            )
            continue
        s = first + best[2]
        busy[best[3]][s : s + n] = True
        load[s : s + n] += float(b.max_power_kw)
        placed[b.id] = (best[3], s, s + n)

    by_connector: dict[int, list[ScheduleBooking]] = defaultdict(list)
    for b in problem.bookings:
        if b.id in placed:
            by_connector[placed[b.id][0]].append(b)
    out: list[ScheduleBooking] = []
    for c, group in by_connector.items():
        group.sort(key=lambda b: placed[b.id][1])
        reach = 0
        for i, b in enumerate(group):
            _, s, e = placed[b.id]
            first, last = windows[b.id]
            following = placed[group[i + 1].id][1] if i + 1 < len(group) else slots
            lo, hi = max(first, reach, 0), min(last, following)
            reach = hi
            out.append(
                replace(
                    b,
                    earliest=max(b.earliest, start + lo * slot),
                    latest=min(b.latest, start + hi * slot),
                    connector_id=c,
                )
            )
            assert lo <= s and e <= hi
    return out, unmet
