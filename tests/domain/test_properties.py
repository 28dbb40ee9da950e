"""Invariants of the booking logic, over random sites, bookings and requests."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from evcms_desktop.domain.availability import Occupancy, find_slot
from evcms_desktop.domain.plans import PlanKind, generate_plans
from evcms_desktop.domain.site import ConnectorSpec, Site
from evcms_desktop.domain.tariff import PricingRule, Tariff
from evcms_desktop.domain.validation import PlanRequest

NOW = datetime(2026, 11, 30, 0, tzinfo=UTC)  # a Monday
QUARTER = timedelta(minutes=15)

quarters = st.integers(min_value=0, max_value=7 * 96)
durations = st.sampled_from([30, 60, 75, 120, 45, 90, 180, 240]).map(lambda m: timedelta(minutes=m))
energies = st.decimals(min_value="0.5", max_value="80", places=1)
# Requests ask for at least the longest duration (4 h) at 1 kW, so that none breaks the
# slot-length rule (its own test is test_slot_length.py).
request_energies = st.decimals(min_value="4", max_value="80", places=1)
powers = st.one_of(st.none(), st.decimals(min_value="3", max_value="17.6", places=1))


@st.composite
def occupancies(draw, connectors: int = 3) -> Occupancy:
    busy = {}
    for cid in range(1, connectors + 1):
        starts = draw(st.lists(quarters, max_size=25, unique=True))
        busy[cid] = [
            (NOW + s * QUARTER, NOW + s * QUARTER + draw(durations)) for s in sorted(starts)
        ]
    return Occupancy(busy)


@st.composite
def requests(draw) -> PlanRequest:
    energy = draw(st.one_of(st.none(), request_energies))
    power = draw(powers)
    if energy is None and power is None:
        energy = Decimal("20")
    return PlanRequest(
        arrival=NOW + draw(quarters) * QUARTER + timedelta(minutes=draw(st.sampled_from([0, 5]))),
        duration=draw(durations),
        energy_kwh=energy,
        power_kw=power,
    )


SITE = Site("Prop", tuple(ConnectorSpec(i, f"C{i}") for i in (1, 2, 3)))


@settings(max_examples=200, deadline=None)
@given(occupancies(), requests())
def test_no_plan_overlaps_a_booking_on_its_connector(occupancy, req):
    outcome = generate_plans(SITE, req, occupancy, NOW)
    for plan in outcome.plans:
        assert occupancy.timeline(plan.connector_id).is_free(plan.start, plan.end), plan.name
        assert plan.end - plan.start >= timedelta(0)
        rate = SITE.rate_kw(SITE.connector(plan.connector_id))
        assert plan.power_kw <= rate
        # The plan delivers its energy in its slot at its power.
        hours = Decimal((plan.end - plan.start).total_seconds()) / 3600
        assert plan.power_kw * hours >= plan.energy_kwh - Decimal("1e-9")


@settings(max_examples=200, deadline=None)
@given(occupancies(), requests())
def test_eco_plans_lie_in_peak_off_and_never_cost_more_than_their_twin(occupancy, req):
    outcome = generate_plans(SITE, req, occupancy, NOW)
    twins = {PlanKind.DURATION_ECO: PlanKind.DURATION, PlanKind.POWER_ECO: PlanKind.POWER}
    for plan in outcome.plans:
        if not plan.kind.is_eco:
            continue
        assert not SITE.calendar.is_peak_on(plan.start, plan.end)
        assert not SITE.calendar.is_peak_on(plan.start) and not SITE.calendar.is_peak_on(
            plan.end - timedelta(microseconds=1)
        )
        twin = outcome.plan(twins[plan.kind])
        if twin is not None:
            assert plan.price.total <= twin.price.total


@settings(max_examples=300)
@given(
    e1=energies,
    e2=energies,
    acm=st.sampled_from([Decimal(0), Decimal("0.25"), Decimal("0.5"), Decimal(1)]),
    peak_on=st.booleans(),
    rule=st.sampled_from(list(PricingRule)),
)
def test_price_never_falls_as_energy_rises(e1, e2, acm, peak_on, rule):
    low, high = sorted((e1, e2))
    tariff = Tariff()
    assert tariff.price(low, acm, peak_on=peak_on, rule=rule).total <= (
        tariff.price(high, acm, peak_on=peak_on, rule=rule).total
    )


@settings(max_examples=100, deadline=None)
@given(occupancies(), requests(), st.integers(min_value=1, max_value=4))
def test_plan_prices_never_fall_as_energy_rises(occupancy, req, extra):
    assume(req.energy_kwh is not None)
    base = generate_plans(SITE, req, occupancy, NOW)
    more = PlanRequest(req.arrival, req.duration, req.energy_kwh + extra, req.power_kw)
    bigger = generate_plans(SITE, more, occupancy, NOW)
    for plan in base.plans:
        other = bigger.plan(plan.kind)
        if other is not None and (other.acm, other.peak_on) == (plan.acm, plan.peak_on):
            assert other.price.total >= plan.price.total


@settings(max_examples=300, deadline=None)
@given(
    occupancies(connectors=4),
    quarters,
    durations,
    st.integers(min_value=1, max_value=60).map(lambda m: timedelta(minutes=m)),
    st.integers(min_value=0, max_value=72).map(lambda h: timedelta(hours=h)),
)
def test_slot_search_always_terminates_within_its_bound(occupancy, q, duration, step, horizon):
    start = NOW + q * QUARTER
    found = find_slot(occupancy, [1, 2, 3, 4], start, duration, step, horizon)
    assert found.probes <= 4 * (horizon // step + 1)
    if found.found:
        assert start <= found.start <= start + horizon
        assert (found.start - start) % step == timedelta(0)
        assert occupancy.timeline(found.connector_id).is_free(found.start, found.start + duration)
