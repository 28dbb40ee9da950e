"""The site scheduler: every booking's energy inside its window, the site limit kept,
least cost first and lowest site peak second. Pure computation (NumPy, SciPy's HiGHS)."""

from evcms_desktop.schedule.model import (
    BookingPlan,
    Schedule,
    ScheduleBooking,
    ScheduleProblem,
    Unmet,
)
from evcms_desktop.schedule.solver import solve_schedule

__all__ = [
    "BookingPlan",
    "Schedule",
    "ScheduleBooking",
    "ScheduleProblem",
    "Unmet",
    "solve_schedule",
]
