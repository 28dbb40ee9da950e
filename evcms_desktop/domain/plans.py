"""Algorithm 2 of the paper: the four charging plans of one request, priced by Eq. (8).

- Plan 1 (Duration): keep the arrival and the duration, raise the power to deliver the
  energy in that time (up to the connector's limit).
- Plan 2 (Power): keep the arrival and the power, lengthen the time to deliver the energy.
  Without a power in the request, the power is the fastest connector's rate.
- Plan 3 (Duration Eco) and Plan 4 (Power Eco): Plans 1 and 2 moved to the nearest free
  slot that lies wholly in Peak Off; offered when the request or their twin falls in
  Peak On.

A plan that cannot be met is not offered; `PlanOutcome.unavailable` says why.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal

from evcms_desktop.domain.availability import Occupancy, SlotSearch, find_nearest_slot, find_slot
from evcms_desktop.domain.peak import PeakIndex
from evcms_desktop.domain.site import Site
from evcms_desktop.domain.tariff import PriceBreakdown, PricingRule, availability_cost_multiplier
from evcms_desktop.domain.validation import (
    BookingRequestError,
    PlanRequest,
    describe_duration,
    validate_request,
)

HOUR = Decimal(3600)
SAME_AS = "The same as Plan {} for this request."


class PlanKind(enum.IntEnum):
    DURATION = 1
    POWER = 2
    DURATION_ECO = 3
    POWER_ECO = 4

    @property
    def title(self) -> str:
        return {1: "Duration", 2: "Power", 3: "Duration Eco", 4: "Power Eco"}[self.value]

    @property
    def is_eco(self) -> bool:
        return self in (PlanKind.DURATION_ECO, PlanKind.POWER_ECO)


@dataclass(frozen=True)
class Plan:
    kind: PlanKind
    connector_id: int
    start: datetime
    end: datetime
    energy_kwh: Decimal
    power_kw: Decimal
    peak_on: bool
    overlapped: bool
    acm: Decimal
    price: PriceBreakdown
    saving: Decimal

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    @property
    def name(self) -> str:
        return f"Plan {self.kind.value} ({self.kind.title})"


@dataclass(frozen=True)
class PlanOutcome:
    request: PlanRequest
    baseline: PriceBreakdown  # the slot exactly as asked for
    requested_peak_on: bool
    requested_overlapped: bool
    plans: tuple[Plan, ...]
    unavailable: dict[PlanKind, str] = field(default_factory=dict)

    @property
    def cheapest(self) -> Plan | None:
        """Lowest total; on a tie the plan nearest to what was asked (lowest number)."""
        return min(self.plans, key=lambda p: (p.price.total, p.kind.value), default=None)

    def plan(self, kind: PlanKind) -> Plan | None:
        return next((p for p in self.plans if p.kind is kind), None)


def _duration_for(energy: Decimal, power: Decimal, step: timedelta) -> timedelta:
    """Time to deliver `energy` at `power`, rounded up to whole steps."""
    seconds = energy / power * HOUR
    steps = (seconds / Decimal(step.total_seconds())).to_integral_value(ROUND_CEILING)
    return step * int(steps)


@dataclass(frozen=True)
class _Shape:
    duration: timedelta
    power: Decimal


class _Planner:
    def __init__(
        self,
        site: Site,
        request: PlanRequest,
        occupancy: Occupancy,
        now: datetime,
        rule: PricingRule,
    ) -> None:
        self.site, self.request, self.occupancy, self.now, self.rule = (
            site,
            request,
            occupancy,
            now,
            rule,
        )
        chosen = site.connector(request.connector_id) if request.connector_id else None
        self.connectors = (chosen,) if chosen else site.connectors
        span = site.horizon + site.max_session
        self.peaks = PeakIndex(site.calendar, request.arrival - span, request.arrival + 2 * span)
        hours = Decimal(request.duration.total_seconds()) / HOUR
        if request.energy_kwh is not None:
            self.energy = request.energy_kwh
        else:
            assert request.power_kw is not None
            self.energy = request.power_kw * hours
        self.unavailable: dict[PlanKind, str] = {}

    def connector_ids(self, power: Decimal) -> list[int]:
        return [c.id for c in self.connectors if self.site.rate_kw(c) >= power]

    def price(self, peak_on: bool, overlapped: bool) -> tuple[Decimal, PriceBreakdown]:
        acm = availability_cost_multiplier(overlapped, peak_on)
        breakdown = self.site.tariff.price(self.energy, acm, peak_on=peak_on, rule=self.rule)
        return acm, breakdown

    def make(self, kind: PlanKind, shape: _Shape, found: SlotSearch, overlapped: bool) -> Plan:
        assert found.start is not None and found.connector_id is not None
        end = found.start + shape.duration
        peak_on = self.peaks.is_peak_on(found.start, end)
        acm, breakdown = self.price(peak_on, overlapped)
        return Plan(
            kind=kind,
            connector_id=found.connector_id,
            start=found.start,
            end=end,
            energy_kwh=self.energy,
            power_kw=shape.power,
            peak_on=peak_on,
            overlapped=overlapped,
            acm=acm,
            price=breakdown,
            saving=Decimal(0),
        )

    def shapes(self) -> dict[PlanKind, _Shape]:
        request, step = self.request, self.site.step
        fastest = max(self.site.rate_kw(c) for c in self.connectors)
        hours = Decimal(request.duration.total_seconds()) / HOUR
        shapes: dict[PlanKind, _Shape] = {}
        duration_power = self.energy / hours
        if duration_power > fastest:
            self.unavailable[PlanKind.DURATION] = (
                f"Delivering {self.energy:.1f} kWh in {describe_duration(request.duration)} needs"
                f" {duration_power:.1f} kW; the connectors here deliver at most {fastest:.1f} kW."
            )
        else:
            shapes[PlanKind.DURATION] = _Shape(request.duration, duration_power)
        power = request.power_kw if request.power_kw is not None else fastest
        power_shape = _Shape(_duration_for(self.energy, power, step), power)
        if power_shape.duration > self.site.max_session:
            self.unavailable[PlanKind.POWER] = (
                f"At {power:.1f} kW the charge would take longer than the longest booking."
            )
        elif shapes.get(PlanKind.DURATION) == power_shape:
            self.unavailable[PlanKind.POWER] = SAME_AS.format(PlanKind.DURATION.value)
        else:
            shapes[PlanKind.POWER] = power_shape
        return shapes

    def place(self, kind: PlanKind, shape: _Shape) -> Plan | None:
        found = find_slot(
            self.occupancy,
            self.connector_ids(shape.power),
            self.request.arrival,
            shape.duration,
            self.site.step,
            self.site.horizon,
        )
        if not found.found:
            self.unavailable[kind] = "No connector is free within 24 hours of the arrival time."
            return None
        return self.make(kind, shape, found, overlapped=not found.was_available)

    def place_eco(self, kind: PlanKind, shape: _Shape) -> Plan | None:
        """The nearest free Peak Off slot, in steps from the arrival and also on the clock's
        own steps: an arrival of 19:55 would otherwise wait until 22:10 when Peak On ends at
        22:00 (a later start wins a tie, as in the search)."""
        arrival, step = self.request.arrival, self.site.step
        on_clock = arrival - (arrival - arrival.replace(minute=0, second=0, microsecond=0)) % step
        found = None
        for desired in dict.fromkeys((arrival, on_clock)):
            search = find_nearest_slot(
                self.occupancy,
                self.connector_ids(shape.power),
                desired,
                shape.duration,
                step,
                self.site.horizon,
                accept=lambda start, end: not self.peaks.is_peak_on(start, end),
                not_before=max(self.now, self.request.earliest or arrival),
            )
            if search.found and (found is None or _nearer(search, found, arrival)):
                found = search
        if found is None:
            self.unavailable[kind] = "No Peak Off slot is free near the arrival time."
            return None
        # The Eco slot is one the search found free: no overlap, Peak Off, so ACM 0.
        return self.make(kind, shape, found, overlapped=False)

    def run(self) -> PlanOutcome:
        request = self.request
        shapes = self.shapes()
        requested_end = request.arrival + request.duration
        requested_peak_on = self.peaks.is_peak_on(request.arrival, requested_end)
        requested_overlapped = (
            self.occupancy.free_connector(
                [c.id for c in self.connectors], request.arrival, requested_end
            )
            is None
        )
        _, baseline = self.price(requested_peak_on, requested_overlapped)

        plans: list[Plan] = []
        for kind, eco in (
            (PlanKind.DURATION, PlanKind.DURATION_ECO),
            (PlanKind.POWER, PlanKind.POWER_ECO),
        ):
            shape = shapes.get(kind)
            if shape is None:
                reason = self.unavailable[kind]
                if reason == SAME_AS.format(PlanKind.DURATION.value):
                    reason = SAME_AS.format(PlanKind.DURATION_ECO.value)
                self.unavailable[eco] = reason
                continue
            plan = self.place(kind, shape)
            if plan is not None:
                plans.append(plan)
            # Eco plans are offered when the request falls in Peak On, including when
            # Algorithm 1 pushed its twin out of Peak On (where it pays ACM 0.25 for the
            # overlap and the Eco slot, free, pays 0). A Peak Off request pushed into
            # Peak On gets them too (docs/reading-the-paper.md, "When Eco plans ...").
            if requested_peak_on or (plan is not None and plan.peak_on):
                eco_plan = self.place_eco(eco, shape)
                if eco_plan is not None and plan is not None and _same_slot(eco_plan, plan):
                    self.unavailable[eco] = SAME_AS.format(kind.value)
                elif eco_plan is not None:
                    plans.append(eco_plan)
            else:
                self.unavailable[eco] = f"The request and Plan {kind.value} are in Peak Off."
        plans = [
            _with_saving(p, baseline.total - p.price.total)
            for p in sorted(plans, key=lambda p: p.kind)
        ]
        return PlanOutcome(
            request=request,
            baseline=baseline,
            requested_peak_on=requested_peak_on,
            requested_overlapped=requested_overlapped,
            plans=tuple(plans),
            unavailable=dict(sorted(self.unavailable.items())),
        )


def _nearer(a: SlotSearch, b: SlotSearch, arrival: datetime) -> bool:
    """Whether slot `a` starts nearer the arrival than `b` (the later on a tie)."""
    assert a.start is not None and b.start is not None
    da, db = abs(a.start - arrival), abs(b.start - arrival)
    return da < db or (da == db and a.start > b.start)


def _same_slot(a: Plan, b: Plan) -> bool:
    """The same booking for the driver: same slot, connector and power (so same price)."""
    return (a.start, a.end, a.connector_id, a.power_kw, a.price.total) == (
        b.start,
        b.end,
        b.connector_id,
        b.power_kw,
        b.price.total,
    )


def _with_saving(plan: Plan, saving: Decimal) -> Plan:
    return Plan(**{**plan.__dict__, "saving": saving})


def generate_plans(
    site: Site,
    request: PlanRequest,
    occupancy: Occupancy,
    now: datetime,
    rule: PricingRule = PricingRule.OPTIMIZED,
) -> PlanOutcome:
    """Plans 1 to 4 for a request, against the bookings in `occupancy`.

    Raises BookingRequestError when the request itself is invalid.
    """
    errors = validate_request(site, request, now)
    if errors:
        raise BookingRequestError(errors)
    return _Planner(site, request, occupancy, now, rule).run()
