"""The driver's earlier start for Eco plans: without one an Eco plan never starts before
the arrival; with one it may start from then (not before); a bad one is refused with a
message for the field. Tuesday 1 December 2026, London on GMT (= UTC)."""

from dataclasses import replace
from datetime import timedelta

import pytest

from evcms_desktop.domain.availability import Occupancy
from evcms_desktop.domain.plans import PlanKind, generate_plans
from evcms_desktop.domain.validation import BookingRequestError
from tests.domain.test_plans import NOW, SITE, request, tue


def test_an_eco_plan_starts_from_the_earlier_time_and_never_before_it():
    # 17:00 is Peak On (16:00-22:00): Plan 3 moves to Peak Off after the window ...
    late = generate_plans(SITE, request(tue(17)), Occupancy(), NOW).plan(PlanKind.DURATION_ECO)
    assert late is not None and late.start == tue(22)
    # ... or, when the driver can come from 14:00, to the nearest Peak Off hour before it.
    early = generate_plans(
        SITE, replace(request(tue(17)), earliest=tue(14)), Occupancy(), NOW
    ).plan(PlanKind.DURATION_ECO)
    assert early is not None and (early.start, early.end) == (tue(15), tue(16))
    # From 15:30 the hour from 15:00 is not allowed: nothing starts before 15:30.
    tight = generate_plans(SITE, replace(request(tue(17)), earliest=tue(15, 30)), Occupancy(), NOW)
    for plan in tight.plans:
        assert plan.start >= tue(15, 30)


def test_every_eco_plan_of_many_requests_starts_at_or_after_the_arrival_without_one():
    for hour in range(7, 23):
        for plan in generate_plans(SITE, request(tue(hour)), Occupancy(), NOW).plans:
            assert plan.start >= tue(hour), (hour, plan.kind)


@pytest.mark.parametrize(
    ("earliest", "message"),
    [
        (tue(18), "must not be after the arrival"),
        (tue(17) - timedelta(hours=13), "at most 12 hours before the arrival"),
        (NOW - timedelta(minutes=30), "has passed"),
        (tue(14).replace(tzinfo=None), "needs a time zone"),
    ],
)
def test_a_bad_earlier_time_is_refused_for_its_field(earliest, message):
    with pytest.raises(BookingRequestError) as caught:
        generate_plans(SITE, replace(request(tue(17)), earliest=earliest), Occupancy(), NOW)
    (error,) = caught.value.for_field("earliest")
    assert message in error
