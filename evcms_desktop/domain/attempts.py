"""Wrong secrets typed at a screen (the kiosk's PIN, a console's sign-in): after a few in a
row the screen locks, for a span that doubles with each lock up to a ceiling."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

TRIES = 5  # wrong secrets in a row before the screen locks
FIRST_LOCK = timedelta(minutes=1)  # each further lock doubles, up to
LONGEST_LOCK = timedelta(minutes=15)


class WrongAttempts:
    """Counts wrong secrets; `locked_until` is set while no attempt may be checked."""

    def __init__(
        self,
        clock: Callable[[], datetime],
        tries: int = TRIES,
        first_lock: timedelta = FIRST_LOCK,
        longest_lock: timedelta = LONGEST_LOCK,
    ) -> None:
        self.clock = clock
        self.tries = tries
        self.first_lock = first_lock
        self.longest_lock = longest_lock
        self.wrong = 0
        self.locks = 0
        self.locked_until: datetime | None = None

    def seconds_locked(self) -> int:
        """Whole seconds the screen stays locked (at least 1 while locked), 0 when open."""
        return seconds_until(self.locked_until, self.clock())

    def failed(self) -> int:
        """Count a wrong secret; the tries left before the lock (0: it just locked)."""
        self.wrong += 1
        if self.wrong < self.tries:
            return self.tries - self.wrong
        self.locked_until = self.clock() + lock_after(
            self.locks, self.first_lock, self.longest_lock
        )
        self.locks += 1
        self.wrong = 0
        return 0

    def succeeded(self) -> None:
        self.wrong = 0


def lock_after(
    locks: int, first: timedelta = FIRST_LOCK, longest: timedelta = LONGEST_LOCK
) -> timedelta:
    """How long the next lock lasts, after `locks` earlier ones."""
    return min(first * 2**locks, longest)


def seconds_until(locked_until: datetime | None, now: datetime) -> int:
    """Whole seconds a lock still holds (at least 1 while it holds), 0 when open."""
    if locked_until is None:
        return 0
    left = (locked_until - now).total_seconds()
    return max(1, round(left)) if left > 0 else 0


def lock_span(seconds: int) -> str:
    """How long a lock lasts, as a person reads it."""
    return f"{seconds} s" if seconds < 120 else f"{round(seconds / 60)} min"
