"""Refused handshakes logged in bounded lines, and an address that keeps being refused held.

Anyone can knock on the listener: each refusal (404, 401, 429, 503) used to be a log line
with the whole request path in it, so 500 knocks of 8 KB rotated the log files away in a
second. Now a few lines per address per interval are logged, the rest are counted and
summed up in one line per address when the interval ends, and an address refused more
than `BLOCK_AFTER` times in one interval gets 429 until it ends, without being checked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

INTERVAL_SECONDS = 10.0
LINES_PER_ADDRESS = 3  # logged in full per address per interval
LINES_PER_INTERVAL = 20  # logged in full over all addresses per interval
SUMMARY_LINES = 10  # addresses summed up by name per interval; the others in one line
BLOCK_AFTER = 30  # refused handshakes of one address in an interval before it is held
MAX_ADDRESSES = 10_000  # tracked per interval; the others are counted together


class RefusedHandshakes:
    """Counts refused handshakes per address over fixed intervals and decides which are
    logged; `roll` (also called from the tick) writes the interval's summary lines."""

    def __init__(
        self,
        log: logging.Logger,
        interval: float = INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log
        self._interval = interval
        self._clock = clock
        self._started = clock()
        self._counts: dict[str, int] = {}  # address: refusals this interval
        self._unlogged: dict[str, int] = {}  # address: refusals counted, not logged
        self._strikes: dict[str, int] = {}  # address: refusals that count towards a hold
        self._lines = 0
        self._others = 0  # refusals of addresses beyond MAX_ADDRESSES

    def held_for(self, address: str) -> float:
        """Seconds until `address` may be checked again (0: now)."""
        self.roll()
        if self._strikes.get(address, 0) < BLOCK_AFTER:
            return 0.0
        return max(0.0, self._started + self._interval - self._clock())

    def refused(
        self,
        address: str,
        message: str,
        *args: Any,
        level: int = logging.WARNING,
        hold: bool = True,
    ) -> None:
        """Count a refused handshake of `address`; log `message % args` while the
        interval's budget of lines lasts. `hold=False`: the refusal is the server's
        (full, or its store unavailable), not the address's fault, and never holds it."""
        self.roll()
        if address not in self._counts and len(self._counts) >= MAX_ADDRESSES:
            self._others += 1
            return
        count = self._counts.get(address, 0) + 1
        self._counts[address] = count
        if hold:
            self._strikes[address] = self._strikes.get(address, 0) + 1
        if count <= LINES_PER_ADDRESS and self._lines < LINES_PER_INTERVAL:
            self._lines += 1
            self._log.log(level, message, *args)
        else:
            self._unlogged[address] = self._unlogged.get(address, 0) + 1

    def roll(self) -> None:
        """Once the interval is over: one line per address with refusals not logged (the
        first SUMMARY_LINES of them; one line for the rest), then a new interval."""
        now = self._clock()
        if now - self._started < self._interval:
            return
        seconds = round(self._interval)
        unlogged = sorted(self._unlogged.items(), key=lambda item: -item[1])
        for address, count in unlogged[:SUMMARY_LINES]:
            self._log.warning(
                "%s: %d more refused handshakes in the last %d s", address, count, seconds
            )
        rest = sum(count for _, count in unlogged[SUMMARY_LINES:]) + self._others
        if rest:
            self._log.warning(
                "%d more refused handshakes from other addresses in the last %d s", rest, seconds
            )
        self._started = now
        self._counts.clear()
        self._unlogged.clear()
        self._strikes.clear()
        self._lines = 0
        self._others = 0
