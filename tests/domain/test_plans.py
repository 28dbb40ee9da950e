"""Algorithm 2 on hand-worked cases. Tuesday 1 December 2026, London on GMT (= UTC)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from evcms_desktop.domain.availability import Occupancy
from evcms_desktop.domain.plans import PlanKind, generate_plans
from evcms_desktop.domain.site import ConnectorSpec, Site
from evcms_desktop.domain.validation import BookingRequestError, PlanRequest

NOW = datetime(2026, 12, 1, 6, tzinfo=UTC)
SITE = Site("Test", (ConnectorSpec(1, "A #1"), ConnectorSpec(2, "A #2")))
HOUR = timedelta(hours=1)


def tue(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, 1, hour, minute, tzinfo=UTC)


def request(arrival, duration=HOUR, energy="17.6", power="11", connector=None) -> PlanRequest:
    return PlanRequest(
        arrival=arrival,
        duration=duration,
        energy_kwh=Decimal(energy) if energy is not None else None,
        power_kw=Decimal(power) if power is not None else None,
        connector_id=connector,
    )


def both_busy(start, end) -> Occupancy:
    return Occupancy({1: [(start, end)], 2: [(start, end)]})


def test_peak_on_request_yields_two_eco_plans():
    outcome = generate_plans(SITE, request(tue(17)), Occupancy(), NOW)
    assert [p.kind for p in outcome.plans] == list(PlanKind)
    p1, p2, p3, p4 = outcome.plans
    assert (p1.start, p1.end, p1.power_kw) == (tue(17), tue(18), Decimal("17.6"))
    assert (p2.start, p2.end, p2.power_kw) == (
        tue(17),
        tue(18, 45),
        Decimal("11"),
    )
    assert p1.peak_on and p2.peak_on and p1.acm == p2.acm == Decimal("0.5")
    assert p1.price.total == p2.price.total == Decimal("10.50")
    # The nearest Peak Off slots not before the arrival: the driver cannot charge before
    # arriving, so after the 16:00-22:00 window rather than before it.
    assert (p3.start, p3.end) == (tue(22), tue(23))
    assert (p4.start, p4.end) == (tue(22), tue(23, 45))
    for eco in (p3, p4):
        assert not eco.peak_on and eco.acm == 0
        assert eco.price.total == Decimal("9.00")
        assert eco.saving == Decimal("1.50")
    assert outcome.baseline.total == Decimal("10.50")
    assert outcome.requested_peak_on and not outcome.requested_overlapped
    assert outcome.cheapest is p3
    assert outcome.unavailable == {}


def test_peak_off_request_yields_two_plans():
    outcome = generate_plans(SITE, request(tue(12)), Occupancy(), NOW)
    assert [p.kind for p in outcome.plans] == [PlanKind.DURATION, PlanKind.POWER]
    assert all(
        not p.peak_on and p.acm == 0 and p.price.total == Decimal("9.00") for p in outcome.plans
    )
    assert set(outcome.unavailable) == {PlanKind.DURATION_ECO, PlanKind.POWER_ECO}
    assert "are in Peak Off" in outcome.unavailable[PlanKind.DURATION_ECO]


def test_acm_peak_off_with_overlap_is_a_quarter():
    outcome = generate_plans(SITE, request(tue(12)), both_busy(tue(12), tue(12, 30)), NOW)
    p1 = outcome.plan(PlanKind.DURATION)
    assert (p1.start, p1.overlapped, p1.peak_on, p1.acm) == (
        tue(12, 30),
        True,
        False,
        Decimal("0.25"),
    )
    assert p1.price.total == Decimal("9.75")
    assert outcome.requested_overlapped
    assert outcome.baseline.total == Decimal("9.75")
    assert p1.saving == 0


def test_acm_peak_on_with_overlap_is_one_and_eco_saves_the_peak_demand_charge():
    outcome = generate_plans(SITE, request(tue(17)), both_busy(tue(17), tue(17, 30)), NOW)
    p1 = outcome.plan(PlanKind.DURATION)
    assert (p1.start, p1.overlapped, p1.peak_on, p1.acm) == (tue(17, 30), True, True, Decimal(1))
    assert p1.price.total == Decimal("12.00")
    p3 = outcome.plan(PlanKind.DURATION_ECO)
    assert p3.price.total == Decimal("9.00")
    assert p1.price.total - p3.price.total == SITE.tariff.peak_demand_charge


def test_overlap_shift_that_leaves_peak_on_gets_the_peak_off_multiplier():
    # 10:00-11:00 is taken on both connectors: the request moves to 11:00, Peak Off.
    outcome = generate_plans(SITE, request(tue(10)), both_busy(tue(10), tue(11)), NOW)
    p1 = outcome.plan(PlanKind.DURATION)
    assert (p1.start, p1.peak_on, p1.overlapped, p1.acm) == (tue(11), False, True, Decimal("0.25"))
    assert outcome.plan(PlanKind.POWER).start == tue(11)
    assert outcome.baseline.acm == Decimal(1)
    # The request was Peak On, so the Eco plans are offered: the nearest free slot wholly
    # in Peak Off is that same 11:00, found free, so without the overlap surcharge.
    p3 = outcome.plan(PlanKind.DURATION_ECO)
    assert (p3.start, p3.acm, p3.price.total) == (tue(11), Decimal(0), Decimal("9.00"))
    assert outcome.cheapest is p3


def test_energy_beyond_the_connector_in_the_asked_time_drops_plan_1_with_a_reason():
    outcome = generate_plans(SITE, request(tue(12), energy="40", power=None), Occupancy(), NOW)
    assert outcome.plan(PlanKind.DURATION) is None
    assert "needs 40.0 kW" in outcome.unavailable[PlanKind.DURATION]
    assert "17.6 kW" in outcome.unavailable[PlanKind.DURATION]
    p2 = outcome.plan(PlanKind.POWER)
    assert p2.power_kw == Decimal("17.6")
    assert p2.duration == timedelta(hours=2, minutes=30)  # 40 / 17.6 = 2.27 h


def test_no_free_slot_inside_the_horizon_is_explained():
    busy = both_busy(tue(11), tue(11) + timedelta(days=3))
    outcome = generate_plans(SITE, request(tue(12)), busy, NOW)
    assert outcome.plans == ()
    assert "No connector is free" in outcome.unavailable[PlanKind.DURATION]


def test_a_chosen_connector_is_kept():
    outcome = generate_plans(SITE, request(tue(12), connector=2), Occupancy(), NOW)
    assert {p.connector_id for p in outcome.plans} == {2}
    busy = Occupancy({2: [(tue(12), tue(13))]})
    p1 = generate_plans(SITE, request(tue(12), connector=2), busy, NOW).plan(PlanKind.DURATION)
    assert (p1.connector_id, p1.start) == (2, tue(13))


def test_slower_connectors_are_skipped_for_a_fast_plan():
    site = Site("Mixed", (ConnectorSpec(1, "slow", Decimal("7")), ConnectorSpec(2, "fast")))
    p1 = generate_plans(site, request(tue(12)), Occupancy(), NOW).plan(PlanKind.DURATION)
    assert p1.connector_id == 2  # 17.6 kW is above the 5.6 kW of connector 1


def test_a_power_only_request_has_one_plan_per_status():
    outcome = generate_plans(SITE, request(tue(17), energy=None, power="11"), Occupancy(), NOW)
    assert [p.kind for p in outcome.plans] == [PlanKind.DURATION, PlanKind.DURATION_ECO]
    assert outcome.plans[0].energy_kwh == Decimal("11")
    assert "same as Plan 1" in outcome.unavailable[PlanKind.POWER]
    assert "same as Plan 3" in outcome.unavailable[PlanKind.POWER_ECO]


def test_eco_plans_do_not_start_in_the_past():
    now = tue(15, 30)
    outcome = generate_plans(SITE, request(tue(17)), Occupancy(), now)
    p3 = outcome.plan(PlanKind.DURATION_ECO)
    assert p3.start == tue(22)


@pytest.mark.parametrize(
    ("changes", "field", "text"),
    [
        ({"duration": timedelta(0)}, "duration", "longer than zero"),
        ({"duration": timedelta(hours=30)}, "duration", "at most 24 h"),
        ({"energy": "-1"}, "energy", "at least 0.1 kWh"),
        ({"energy": None, "power": None}, "energy", "Enter the energy"),
        ({"power": "0"}, "power", "at least 1 kW"),
        ({"power": "50"}, "power", "at most 17.6 kW"),
        ({"energy": "500"}, "energy", "at most 422.4 kWh"),
        ({"arrival": tue(5)}, "arrival", "has passed"),
        ({"connector": 9}, "connector", "not at this station"),
    ],
)
def test_invalid_requests_are_explained_per_field(changes, field, text):
    kwargs = {"arrival": tue(12)} | changes
    with pytest.raises(BookingRequestError) as caught:
        generate_plans(SITE, request(**kwargs), Occupancy(), NOW)
    messages = caught.value.for_field(field)
    assert messages and text in messages[0]


def test_a_site_without_connectors_cannot_be_booked():
    with pytest.raises(BookingRequestError) as caught:
        generate_plans(Site("Empty", ()), request(tue(12)), Occupancy(), NOW)
    assert "no connectors" in caught.value.for_field("connector")[0]


def test_eco_plans_start_earlier_only_when_the_driver_says_so():
    asked = request(tue(17))
    early = PlanRequest(**{**asked.__dict__, "earliest": tue(14)})
    outcome = generate_plans(SITE, early, Occupancy(), NOW)
    p3, p4 = outcome.plan(PlanKind.DURATION_ECO), outcome.plan(PlanKind.POWER_ECO)
    assert (p3.start, p3.end) == (tue(15), tue(16))
    assert (p4.start, p4.end) == (tue(14, 15), tue(16))
    for plan in generate_plans(SITE, asked, Occupancy(), NOW).plans:
        assert plan.start >= asked.arrival


def test_plan_4_is_not_offered_when_it_is_plan_2():
    # 15:00 for 90 minutes reaches into Peak On; at 17.6 kW Plan 2 takes 30 minutes, all in
    # Peak Off, and the nearest Peak Off slot from the arrival is that same slot.
    outcome = generate_plans(
        SITE,
        request(tue(15), duration=timedelta(minutes=90), energy="8.8", power="17.6"),
        Occupancy(),
        NOW,
    )
    p2 = outcome.plan(PlanKind.POWER)
    assert (p2.start, p2.end, p2.peak_on) == (tue(15), tue(15, 30), False)
    assert outcome.plan(PlanKind.POWER_ECO) is None
    assert outcome.unavailable[PlanKind.POWER_ECO] == "The same as Plan 2 for this request."


def test_an_eco_plan_for_an_arrival_off_the_quarter_hours_starts_when_peak_on_ends():
    """An arrival of 19:55 got its Eco plan at 22:10 (on the arrival's 15-minute grid)
    although Peak On ends at 22:00 and 22:00 was free."""
    outcome = generate_plans(SITE, request(tue(19, 55)), Occupancy(), NOW)
    p3, p4 = outcome.plan(PlanKind.DURATION_ECO), outcome.plan(PlanKind.POWER_ECO)
    assert p3 is not None and p4 is not None
    assert (p3.start, p3.end) == (tue(22), tue(23))
    assert p4.start == tue(22)
    # When 22:00 is taken, the arrival's own grid may still be the nearer: 22:10 then.
    taken = generate_plans(SITE, request(tue(19, 55)), both_busy(tue(22), tue(22, 5)), NOW)
    eco = taken.plan(PlanKind.DURATION_ECO)
    assert eco is not None and eco.start == tue(22, 10)
