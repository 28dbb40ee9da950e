"""The site schedule's windows: a session lies where its driver is, never in between.

A driver is at the site during their stay (arrival to latest departure) and during the
booked slot they accepted; when the two do not meet, the car is away between them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from evcms_desktop.evaluation.comparison import schedule_problem, site_schedule
from evcms_desktop.evaluation.runner import BookedSlot, EvaluationRow, EvaluationRun, StationSetup
from evcms_desktop.evaluation.scenario import Scenario, ScenarioConfig, ScenarioRequest
from evcms_desktop.schedule.milp import MilpOptions

DAY = datetime(2027, 3, 2, tzinfo=UTC)


def _row(tid: int, stay: tuple[float, float], booked: tuple[float, float]) -> EvaluationRow:
    """A full-power hour (17.6 kWh) asked for in `stay` and booked in `booked` (hours)."""
    arrival, leave = (DAY + timedelta(hours=h) for h in stay)
    start, end = (DAY + timedelta(hours=h) for h in booked)
    request = ScenarioRequest(
        tid=tid,
        booked_at=DAY - timedelta(days=1, minutes=-tid),
        arrival=arrival,
        duration=timedelta(hours=1),
        energy_kwh=Decimal("17.6"),
        latest_departure=leave,
    )

    def slot(at: datetime, until: datetime) -> BookedSlot:
        return BookedSlot(
            connector_id=1,
            connector="1",
            connector_max_kw=Decimal(22),
            start=at,
            end=until,
            energy_kwh=Decimal("17.6"),
            power_kw=Decimal("17.6"),
            plan=1,
            peak_on=False,
            overlapped=False,
            acm=Decimal(0),
            price=Decimal("9.00"),
        )

    return EvaluationRow(
        request=request,
        peak_on=True,
        available=True,
        original=slot(arrival, arrival + timedelta(hours=1)),
        optimized=slot(start, end),
    )


def _run(*rows: EvaluationRow) -> EvaluationRun:
    scenario = Scenario(ScenarioConfig(bookings=len(rows), connectors=1), ())
    return EvaluationRun(scenario, StationSetup.with_connectors(1), rows, (1,))


AWAY_UNTIL_NIGHT = _row(0, (9.5, 10.5), (21.5, 22.5))  # the checker's TID 240
BOOKED_BEFORE = _row(1, (13, 15), (6, 7))  # booked early in the morning, back at 13:00
TOUCHING = _row(2, (16, 17), (17, 18))  # the booked slot starts as the stay ends


def test_a_window_never_spans_the_time_the_driver_is_away() -> None:
    run = _run(AWAY_UNTIL_NIGHT, BOOKED_BEFORE, TOUCHING)
    fit = {b.id: (b.earliest, b.latest) for b in schedule_problem(run, None, "fit").bookings}
    assert fit[0] == (DAY + timedelta(hours=21.5), DAY + timedelta(hours=22.5))
    assert fit[1] == (DAY + timedelta(hours=6), DAY + timedelta(hours=7))
    assert fit[2] == (DAY + timedelta(hours=16), DAY + timedelta(hours=18))  # one visit
    booked = {b.id: (b.earliest, b.latest) for b in schedule_problem(run, None, "booked").bookings}
    assert booked[0] == fit[0]
    assert booked[1] == fit[1]  # not stretched to the latest departure across the morning
    assert booked[2] == (DAY + timedelta(hours=17), DAY + timedelta(hours=18))


def test_sessions_are_charged_while_the_car_is_there() -> None:
    run = _run(AWAY_UNTIL_NIGHT, BOOKED_BEFORE, TOUCHING)
    schedule, _, _ = site_schedule(run, None, options=MilpOptions(time_budget_s=2))
    assert not schedule.unmet
    there = {
        0: [(9.5, 10.5), (21.5, 22.5)],
        1: [(6, 7), (13, 15)],
        2: [(16, 18)],
    }
    for tid, plan in schedule.plans.items():
        assert plan.start is not None and plan.end is not None
        assert any(
            DAY + timedelta(hours=a) <= plan.start and plan.end <= DAY + timedelta(hours=b)
            for a, b in there[tid]
        ), (tid, plan.start, plan.end)
