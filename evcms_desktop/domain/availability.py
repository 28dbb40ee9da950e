"""Algorithm 1 of the paper, for a site of several connectors.

A slot is free when one connector is free for the whole interval. The search moves the
start in steps (15 minutes by default) inside a bounded horizon. Instead of testing every
step against every booking it jumps straight past the booking that blocks a connector,
which gives the same answer as stepping one by one (the first free step) in far fewer
probes. Cost depends on the bookings handed in, which the store limits to the ones near
the requested time.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

Interval = tuple[datetime, datetime]


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    """Half-open intervals [a_start, a_end) and [b_start, b_end) share some time."""
    return a_start < b_end and b_start < a_end


class ConnectorTimeline:
    """The busy intervals of one connector, sorted, with a running maximum of their ends."""

    __slots__ = ("_max_ends", "_starts")

    def __init__(self, busy: Iterable[Interval]) -> None:
        ordered = sorted(busy)
        self._starts = [start for start, _ in ordered]
        self._max_ends: list[datetime] = []
        latest: datetime | None = None
        for _, end in ordered:
            latest = end if latest is None or end > latest else latest
            self._max_ends.append(latest)

    def blocked_until(self, start: datetime, end: datetime) -> datetime | None:
        """None when [start, end) is free, else a time before which no start can be free."""
        i = bisect.bisect_left(self._starts, end) - 1
        if i >= 0 and self._max_ends[i] > start:
            return self._max_ends[i]
        return None

    def is_free(self, start: datetime, end: datetime) -> bool:
        return self.blocked_until(start, end) is None


class Occupancy:
    """Busy intervals per connector id."""

    def __init__(self, busy: Mapping[int, Iterable[Interval]] | None = None) -> None:
        self._timelines: dict[int, ConnectorTimeline] = {
            cid: ConnectorTimeline(intervals) for cid, intervals in (busy or {}).items()
        }

    def timeline(self, connector_id: int) -> ConnectorTimeline:
        return self._timelines.get(connector_id) or ConnectorTimeline(())

    def free_connector(
        self, connector_ids: Sequence[int], start: datetime, end: datetime
    ) -> int | None:
        for cid in connector_ids:
            if self.timeline(cid).is_free(start, end):
                return cid
        return None


@dataclass(frozen=True)
class SlotSearch:
    """Outcome of Algorithm 1: was the asked slot free, and where the booking can go."""

    was_available: bool
    start: datetime | None
    connector_id: int | None
    probes: int

    @property
    def found(self) -> bool:
        return self.start is not None


def _ceil_steps(delta: timedelta, step: timedelta) -> int:
    return -(-delta // step)


def find_slot(
    occupancy: Occupancy,
    connector_ids: Sequence[int],
    start: datetime,
    duration: timedelta,
    step: timedelta,
    horizon: timedelta,
) -> SlotSearch:
    """First start in start, start + step, ... (up to start + horizon) with a free connector.

    Ties between connectors go to the one listed first.
    """
    if step <= timedelta(0) or duration <= timedelta(0):
        raise ValueError("step and duration must be positive")
    max_k = horizon // step
    best_k: int | None = None
    best_cid: int | None = None
    probes = 0
    for cid in connector_ids:
        timeline = occupancy.timeline(cid)
        k = 0
        while k <= max_k and (best_k is None or k < best_k):
            probes += 1
            candidate = start + k * step
            blocked = timeline.blocked_until(candidate, candidate + duration)
            if blocked is None:
                best_k, best_cid = k, cid
                break
            k = max(k + 1, _ceil_steps(blocked - start, step))
    if best_k is None:
        return SlotSearch(False, None, None, probes)
    return SlotSearch(best_k == 0, start + best_k * step, best_cid, probes)


def find_nearest_slot(
    occupancy: Occupancy,
    connector_ids: Sequence[int],
    desired: datetime,
    duration: timedelta,
    step: timedelta,
    horizon: timedelta,
    accept: Callable[[datetime, datetime], bool],
    not_before: datetime | None = None,
) -> SlotSearch:
    """The free slot nearest to `desired` (later wins a tie) whose interval `accept`s.

    Used for the Eco plans: accept is "entirely Peak Off".
    """
    max_k = horizon // step
    probes = 0
    for k in range(max_k + 1):
        for shift in (k, -k) if k else (0,):
            candidate = desired + shift * step
            if not_before is not None and candidate < not_before:
                continue
            end = candidate + duration
            probes += 1
            if not accept(candidate, end):
                continue
            cid = occupancy.free_connector(connector_ids, candidate, end)
            if cid is not None:
                return SlotSearch(k == 0, candidate, cid, probes)
    return SlotSearch(False, None, None, probes)
