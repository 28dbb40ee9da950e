"""Applying a site schedule to the chargers: OCPP 1.6 SetChargingProfile.

Before a car charges, each connector gets ONE TxDefaultProfile (stack level 0) carrying its
whole day: each booking's periods, a booking held at zero from its booked start until its
session, and the connector's own limit between the bookings. OCPP 1.6 says a profile
replaces the one of the same id, or of the same stack level and purpose, on its connector,
so a profile per booking would leave a strict charger with only the last one sent. Distinct
stack levels per booking would work too, but a charger offers few of them
(ChargeProfileMaxStackLevel, often 0 to 8), and their numbers would have to be handed out
and taken back as bookings come and go; the connector's day needs one, on any charger, and
is replaced as one (its id is DAY_PROFILE_BASE + the connector's number, one per charger).
A booking that is charging gets a TxProfile bound to its transaction (profile id = its
booking's id, stack level 1, above the plan keeper's TxProfile of the booked power at 0,
which holds again once the schedule's lapses); its part of the connector's day stays as
it was sent. Limits are rounded down (W to the watt, A to 0.1 A), so a charger obeying
them never draws more than the schedule allows.

`replan_day` reads the day's bookings from the store, schedules them (schedule/optimal.py;
under a site limit, power profiles with at most two changes per session) and sends the
profiles: call it after a booking is confirmed (a new booking re-plans the rest of the
day). The past is not re-planned and a session under way keeps the plan it was sent; the
solve has a time budget, keeps the sessions already sent (and their connectors) unless a
change gains more than a few pence, and only profiles that differ from the ones the
chargers hold are sent: a connector's day goes out again only when a booking on it
changed (not when one has passed), and is cleared when none is left on it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

from evcms_desktop.csms.plan_keeper import PLAN_STACK_LEVEL
from evcms_desktop.csms.protocol import format_timestamp
from evcms_desktop.schedule import (
    BookingPlan,
    Schedule,
    ScheduleBooking,
    ScheduleProblem,
)
from evcms_desktop.schedule.milp import LIVE_OPTIONS
from evcms_desktop.schedule.optimal import plan_site
from evcms_desktop.store.models import BLOCKING_STATES, Booking, ChargePoint, Connector, Station
from evcms_desktop.store.stations import station_calendar, station_tariff

log = logging.getLogger(__name__)

RateUnit = Literal["W", "A"]
_TOL_KW = 1e-6
# A connector's day profile: this plus the connector's number (ids are the charger's own;
# the plans' TxProfiles use the booking ids, csms.plan_keeper's 1_000_000 and up).
DAY_PROFILE_BASE = 2_000_000
# A running booking's TxProfile from the site schedule stacks above the plan keeper's (the
# booked power, csms.plan_keeper): on the charger both are kept, and while the schedule's
# is valid it is the one obeyed (OCPP 1.6 3.13.2: the highest stack level prevails); the
# booked power holds again once it lapses.
SCHEDULE_STACK_LEVEL = PLAN_STACK_LEVEL + 1
# Part of a booking's plan at one limit (the wire's, W or A): from, until, limit.
Segment = tuple[datetime, datetime, float]


class ProfileCommands(Protocol):
    """The part of the central system's CommandService the applier uses."""

    async def set_charging_profile(
        self, cp_id: str, connector_id: int, profile: dict[str, Any]
    ) -> Any: ...

    async def clear_charging_profile(
        self, cp_id: str, profile_id: int | None = None, connector_id: int | None = None
    ) -> Any: ...


@dataclass(frozen=True)
class ConnectorTarget:
    """Where a store connector lives on the wire, and its power."""

    charge_point: str
    connector: int
    max_power_kw: float


@dataclass(frozen=True)
class ProfileRequest:
    """A SetChargingProfile to send: a booking's TxProfile (`booking_id` set) or a
    connector's day (`parts`: each booking's segments in it, as sent); with `clear`, a
    ClearChargingProfile of the connector's day (`profile` holds its id only)."""

    charge_point: str
    connector: int
    profile: dict[str, Any]
    booking_id: Any = None
    parts: tuple[tuple[Any, tuple[Segment, ...]], ...] = ()
    clear: bool = False

    @property
    def key(self) -> Hashable:
        """What a later request replaces this one for: the booking, or the connector."""
        if self.booking_id is not None:
            return self.booking_id
        return (self.charge_point, self.connector)

    @property
    def booking_ids(self) -> tuple[Any, ...]:
        if self.booking_id is not None:
            return (self.booking_id,)
        return tuple(booking_id for booking_id, _ in self.parts)


def _limit(kw: float, unit: RateUnit, voltage: float, phases: int) -> float:
    if unit == "W":
        return float(math.floor(kw * 1000 + 1e-6))
    return math.floor(kw * 1000 / (voltage * phases) * 10 + 1e-6) / 10


def schedule_periods(
    plan: BookingPlan,
    unit: RateUnit = "W",
    voltage: float = 230.0,
    phases: int = 3,
) -> list[dict[str, float | int]]:
    """chargingSchedulePeriod: a period wherever the limit changes, from the plan's first slot."""
    periods: list[dict[str, float | int]] = []
    seconds = int(plan.slot.total_seconds())
    for i, kw in enumerate(plan.powers_kw):
        limit = _limit(kw, unit, voltage, phases)
        if not periods or periods[-1]["limit"] != limit:
            periods.append({"startPeriod": i * seconds, "limit": limit})
    return periods


def _absolute_profile(
    profile_id: int,
    stack_level: int,
    purpose: str,
    start: datetime,
    end: datetime,
    unit: RateUnit,
    periods: list[dict[str, float | int]],
) -> dict[str, Any]:
    """The csChargingProfiles envelope both kinds of profile share: Absolute, valid from
    `start` to `end`, its schedule starting at `start`."""
    return {
        "chargingProfileId": profile_id,
        "stackLevel": stack_level,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Absolute",
        "validFrom": format_timestamp(start),
        "validTo": format_timestamp(end),
        "chargingSchedule": {
            "duration": int((end - start).total_seconds()),
            "startSchedule": format_timestamp(start),
            "chargingRateUnit": unit,
            "chargingSchedulePeriod": periods,
        },
    }


def charging_profile(
    plan: BookingPlan,
    profile_id: int,
    *,
    transaction_id: int | None = None,
    unit: RateUnit = "W",
    stack_level: int | None = None,
    voltage: float = 230.0,
    phases: int = 3,
) -> dict[str, Any]:
    """A csChargingProfiles object (the wire's camelCase) for one booking's plan (a
    running booking's TxProfile, by default at SCHEDULE_STACK_LEVEL; before it charges,
    see `day_profile`)."""
    if stack_level is None:
        stack_level = SCHEDULE_STACK_LEVEL if transaction_id is not None else 0
    start = plan.first_slot
    profile = _absolute_profile(
        profile_id,
        stack_level,
        "TxProfile" if transaction_id is not None else "TxDefaultProfile",
        start,
        start + len(plan.powers_kw) * plan.slot,
        unit,
        schedule_periods(plan, unit, voltage, phases),
    )
    if transaction_id is not None:
        profile["transactionId"] = transaction_id
    return profile


def needs_profile(
    plan: BookingPlan, max_power_kw: float, held_from: datetime | None = None
) -> bool:
    """False when the plan is what the charger does anyway: full power until done, from
    `held_from` (when the car may plug in) if given, else from the plan's first slot."""
    active = [i for i, p in enumerate(plan.powers_kw) if p > _TOL_KW]
    if not active:
        return True  # nothing may be drawn in the window: say so with a zero limit
    if active[0] != 0 or (held_from is not None and held_from < plan.first_slot):
        return True
    head = plan.powers_kw[: active[-1]]
    return any(p < max_power_kw - _TOL_KW for p in head)


def plan_segments(
    plan: BookingPlan,
    unit: RateUnit = "W",
    voltage: float = 230.0,
    phases: int = 3,
    *,
    held_from: datetime | None = None,
) -> tuple[Segment, ...]:
    """A booking's part of its connector's day: a segment wherever the limit changes, from
    `held_from` (at zero until the plan's first slot) if earlier, else the first slot."""
    segments: list[Segment] = []
    if held_from is not None and held_from < plan.first_slot:
        segments.append((held_from, plan.first_slot, _limit(0.0, unit, voltage, phases)))
    for i, kw in enumerate(plan.powers_kw):
        start = plan.first_slot + i * plan.slot
        limit = _limit(kw, unit, voltage, phases)
        if segments and segments[-1][2] == limit and segments[-1][1] == start:
            segments[-1] = (segments[-1][0], start + plan.slot, limit)
        else:
            segments.append((start, start + plan.slot, limit))
    return tuple(segments)


def day_profile(
    parts: Sequence[tuple[Any, Sequence[Segment]]],
    profile_id: int,
    full_limit: float,
    unit: RateUnit = "W",
) -> dict[str, Any]:
    """A connector's TxDefaultProfile (the wire's camelCase) for its bookings' segments:
    `full_limit` (the connector's own) between them; where two overlap, the lower limit."""
    segments = [segment for _, booking in parts for segment in booking]
    start = min(s[0] for s in segments)
    end = max(s[1] for s in segments)
    moments = sorted({s[0] for s in segments} | {s[1] for s in segments})
    periods: list[dict[str, float | int]] = []
    for moment, following in itertools.pairwise(moments):
        covering = [s[2] for s in segments if s[0] <= moment and following <= s[1]]
        limit = min(covering) if covering else full_limit
        if not periods or periods[-1]["limit"] != limit:
            periods.append({"startPeriod": int((moment - start).total_seconds()), "limit": limit})
    return _absolute_profile(profile_id, 0, "TxDefaultProfile", start, end, unit, periods)


def profile_requests(
    schedule: Schedule,
    targets: Mapping[int, ConnectorTarget],
    *,
    profile_ids: Mapping[Any, int] | None = None,
    transactions: Mapping[Any, int] | None = None,
    unit: RateUnit = "W",
    not_before: datetime | None = None,
    sent: Mapping[Hashable, ProfileRequest] | None = None,
    windows: Mapping[Any, datetime] | None = None,
) -> list[ProfileRequest]:
    """The SetChargingProfile requests a schedule needs: a TxProfile per booking with a
    running transaction, one TxDefaultProfile per connector for the rest.

    profile_ids gives a TxProfile's id (default: the booking id, which must then be an
    int); transactions maps a booking to its running transaction; plans ending before
    `not_before` are skipped. `windows` gives when each booking's car may start: a plan
    starting later holds it at zero until then. `sent` holds the requests the chargers
    accepted before (by `ProfileRequest.key`): one asked again unchanged is left out; a
    booking under way keeps its part of its connector's day as sent; a connector or a
    booking that had a profile gets a new one even at full power (it replaces the old
    limit). A connector none of whose bookings needs a limit gets no day profile.
    """
    out: list[ProfileRequest] = []
    sent = sent or {}
    running = transactions or {}
    days: dict[tuple[str, int], list[tuple[Any, tuple[Segment, ...]]]] = {}
    limited: set[tuple[str, int]] = set()
    full: dict[tuple[str, int], float] = {}
    for booking_id, plan in schedule.plans.items():
        target = targets[plan.connector_id]
        day = (target.charge_point, target.connector)
        full[day] = _limit(target.max_power_kw, unit, 230.0, 3)
        end = plan.first_slot + len(plan.powers_kw) * plan.slot
        transaction = running.get(booking_id)
        if transaction is not None:
            before = sent.get(day)
            kept = dict(before.parts).get(booking_id) if before is not None else None
            if kept is not None:
                days.setdefault(day, []).append((booking_id, kept))
        if not_before is not None and end <= not_before:
            continue
        if transaction is None:
            held_from = (windows or {}).get(booking_id)
            segments = plan_segments(plan, unit, held_from=held_from)
            if segments:
                days.setdefault(day, []).append((booking_id, segments))
            if segments and needs_profile(plan, target.max_power_kw, held_from):
                limited.add(day)
            continue
        if not needs_profile(plan, target.max_power_kw) and booking_id not in sent:
            continue
        profile_id = (profile_ids or {}).get(booking_id, booking_id)
        request = ProfileRequest(
            charge_point=target.charge_point,
            connector=target.connector,
            profile=charging_profile(plan, int(profile_id), transaction_id=transaction, unit=unit),
            booking_id=booking_id,
        )
        if sent.get(booking_id) != request:
            out.append(request)
    for day, parts in days.items():
        if day not in limited and day not in sent:
            continue
        parts.sort(key=lambda part: part[1][0][0])
        request = _day_request(day, parts, full[day], unit)
        before = sent.get(day)
        if before is not None and not_before is not None:
            # Bookings over since it was sent change nothing the charger will do.
            passed = _passed(before, {booking_id for booking_id, _ in parts}, not_before)
            if passed and _day_request(day, parts + passed, full[day], unit) == before:
                continue
        if before != request:
            out.append(request)
    for day, before in sent.items():
        if before.booking_id is not None or before.clear or day in days:
            continue
        if not_before is not None and len(_passed(before, set(), not_before)) == len(before.parts):
            continue  # every booking in it is over: it lapses by itself
        out.append(  # its bookings were cancelled or moved: the charger forgets their limits
            ProfileRequest(
                charge_point=before.charge_point,
                connector=before.connector,
                profile={"chargingProfileId": before.profile["chargingProfileId"]},
                clear=True,
            )
        )
    return out


def _day_request(
    day: tuple[str, int],
    parts: Sequence[tuple[Any, tuple[Segment, ...]]],
    full_limit: float,
    unit: RateUnit,
) -> ProfileRequest:
    ordered = sorted(parts, key=lambda part: part[1][0][0])
    return ProfileRequest(
        charge_point=day[0],
        connector=day[1],
        profile=day_profile(ordered, DAY_PROFILE_BASE + day[1], full_limit, unit),
        parts=tuple(ordered),
    )


def _passed(
    before: ProfileRequest, current: set[Any], now: datetime
) -> list[tuple[Any, tuple[Segment, ...]]]:
    """The parts of a connector's day as sent whose bookings are not planned now and whose
    segments all ended by `now`."""
    return [
        (booking_id, segments)
        for booking_id, segments in before.parts
        if booking_id not in current and max(s[1] for s in segments) <= now
    ]


async def send_profiles(
    commands: ProfileCommands, requests: Sequence[ProfileRequest]
) -> list[tuple[ProfileRequest, Any]]:
    """Send each request; the CommandService reports refusals and offline chargers."""
    results = []
    for request in requests:
        if request.clear:
            result = await commands.clear_charging_profile(
                request.charge_point,
                profile_id=request.profile["chargingProfileId"],
                connector_id=request.connector,
            )
        else:
            result = await commands.set_charging_profile(
                request.charge_point, request.connector, request.profile
            )
        if not getattr(result, "ok", True):
            log.warning(
                "Charging profile of bookings %s on %s #%d: %s",
                ", ".join(map(str, request.booking_ids)),
                request.charge_point,
                request.connector,
                getattr(result, "detail", result),
            )
        results.append((request, result))
    return results


def connector_targets(station: Station) -> dict[int, ConnectorTarget]:
    rows = (
        Connector.select(Connector, ChargePoint)
        .join(ChargePoint)
        .where(ChargePoint.station == station)
        .order_by(ChargePoint.ident, Connector.number)
    )
    return {
        c.id: ConnectorTarget(c.charge_point.ident, c.number, float(c.max_power_kw)) for c in rows
    }


def _remaining_energy(booking: Booking, start: datetime) -> Decimal:
    """A session already under way keeps the share of its energy for the time it has left."""
    if booking.start >= start:
        return booking.energy_kwh
    left = Decimal((booking.end - start).total_seconds())
    whole = Decimal((booking.end - booking.start).total_seconds())
    return (booking.energy_kwh * left / whole).quantize(Decimal("0.001"))


def day_problem(
    station: Station, start: datetime, end: datetime, site_limit_kw: Decimal | None = None
) -> tuple[ScheduleProblem, dict[int, ConnectorTarget]]:
    """The station's blocking bookings that end after `start` and begin before `end`."""
    bookings = list(
        Booking.select()
        .where(
            (Booking.station == station)
            & (Booking.end > start)
            & (Booking.start < end)
            & (Booking.state.in_([s.value for s in BLOCKING_STATES]))
        )
        .order_by(Booking.created_at)
    )
    targets = connector_targets(station)
    limit = site_limit_kw if site_limit_kw is not None else station.site_power_limit_kw
    problem = ScheduleProblem(
        bookings=tuple(
            ScheduleBooking(
                id=b.id,
                earliest=max(b.start, start),
                latest=b.end,
                energy_kwh=_remaining_energy(b, start),
                max_power_kw=Decimal(str(targets[b.connector_id].max_power_kw)),
                connector_id=b.connector_id,
                overlapped=b.overlapped,
            )
            for b in bookings
        ),
        connector_ids=tuple(targets),
        site_limit_kw=limit,
        connector_power_kw=tuple(Decimal(str(t.max_power_kw)) for t in targets.values()),
        tariff=station_tariff(station),
        calendar=station_calendar(station),
    )
    return problem, targets


@dataclass
class AppliedPlan:
    """What a station's chargers were last sent: the schedule, and each accepted request
    (by `ProfileRequest.key`: a booking's TxProfile, a connector's day)."""

    schedule: Schedule | None = None
    sent: dict[Hashable, ProfileRequest] = field(default_factory=dict)


WARM_SHARE = 0.4  # of a re-plan's budget for planning from the sessions already sent
SHORT_KWH = 0.05  # a shortfall smaller than this counts as none (as the console shows kWh)


def plan_live(
    problem: ScheduleProblem,
    fixed: Mapping[Any, BookingPlan],
    previous: Mapping[Any, BookingPlan],
    time_budget_s: float,
) -> Schedule:
    """The site's MILP within the budget; if HiGHS fails outright, the heuristic's sessions.

    With `previous` (the plans already sent), it plans from their sessions first, in
    WARM_SHARE of the budget; when that leaves energy short, it plans from scratch (the
    running sessions still fixed) in what is left, and keeps that schedule if it leaves
    less short. From the sessions sent, a new booking can find every slot of its window
    taken and be left wholly short where a plan from scratch meets it.

    The relaxation's bound is left out: nothing here acts on it, and it would come on top
    of the budget (benchmarks/schedule.py reports it beside the re-plan).
    """
    began = time.perf_counter()
    warm = _plan_within(problem, fixed, previous, time_budget_s * (WARM_SHARE if previous else 1))
    if not previous or warm.short_kwh < SHORT_KWH:
        return warm
    left = max(0.0, time_budget_s - (time.perf_counter() - began))
    cold = _plan_within(problem, fixed, {}, left)
    if cold.short_kwh < warm.short_kwh - SHORT_KWH:
        log.info(
            "Re-planned from scratch: %.1f kWh short, where from the sessions sent %.1f",
            cold.short_kwh,
            warm.short_kwh,
        )
        return replace(cold, seconds=time.perf_counter() - began)
    return replace(warm, seconds=time.perf_counter() - began)


def _plan_within(
    problem: ScheduleProblem,
    fixed: Mapping[Any, BookingPlan],
    previous: Mapping[Any, BookingPlan],
    time_budget_s: float,
) -> Schedule:
    try:
        return plan_site(
            problem,
            replace(LIVE_OPTIONS, time_budget_s=time_budget_s),
            compete=False,
            with_bound=False,
            fixed=fixed,
            previous=previous,
        )
    except Exception:
        log.exception("The site's MILP failed: the heuristic's sessions instead")
        return plan_site(
            problem,
            replace(LIVE_OPTIONS, time_budget_s=0),
            compete=False,
            with_bound=False,
            fixed=fixed,
            previous=previous,
        )


def replan(
    problem: ScheduleProblem,
    targets: Mapping[int, ConnectorTarget],
    applied: AppliedPlan,
    *,
    transactions: Mapping[Any, int] | None = None,
    unit: RateUnit = "W",
    time_budget_s: float = LIVE_OPTIONS.time_budget_s,
    booked_starts: Mapping[Any, datetime] | None = None,
    now: datetime | None = None,
) -> tuple[Schedule, list[ProfileRequest]]:
    """The re-plan itself: the new schedule and the requests it needs, nothing sent.

    A booking with a running transaction keeps its plan from `applied` (its profile is not
    asked again, so nothing of it changes, past or future); the others keep their sessions
    where changing them gains no more than a few pence; a request is made only where it
    differs from the one its charger accepted. A session starting after its booking does
    holds the car at zero from `booked_starts` (default: the window's start): the booked
    start, not the re-plan's time, so an unchanged plan gives an unchanged profile. A
    connector's day is not sent again for bookings over by `now` alone, and one whose
    bookings are all gone (cancelled or moved away) is cleared.
    """
    before = applied.schedule.plans if applied.schedule is not None else {}
    running = transactions or {}
    fixed = {booking_id: plan for booking_id, plan in before.items() if booking_id in running}
    # A booking stays on the connector its plan was sent to where that one is free: moved,
    # it would change two connectors' days.
    problem = replace(
        problem,
        bookings=tuple(
            replace(b, connector_id=before[b.id].connector_id) if b.id in before else b
            for b in problem.bookings
        ),
    )
    schedule = plan_live(problem, fixed, before, time_budget_s)
    requests = [
        r
        for r in profile_requests(
            schedule,
            targets,
            transactions=transactions,
            unit=unit,
            sent=applied.sent,
            windows={b.id: b.earliest for b in problem.bookings} | dict(booked_starts or {}),
            not_before=now,
        )
        if r.booking_id not in fixed  # under way: the profile it holds stands
    ]
    return schedule, requests


async def replan_day(
    commands: ProfileCommands,
    station: Station,
    now: datetime,
    end: datetime,
    *,
    transactions: Mapping[Any, int] | None = None,
    unit: RateUnit = "W",
    applied: AppliedPlan | None = None,
    time_budget_s: float = LIVE_OPTIONS.time_budget_s,
) -> tuple[Schedule, list[tuple[ProfileRequest, Any]]]:
    """Schedule the rest of the day from `now` and send the profiles that changed.

    `applied` (updated here) is what the last re-plan sent (see `replan`). The budget is
    wall-clock time from this call to the schedule, reading the store included; the solve
    runs in a worker thread, off the loop that serves the chargers.
    """
    began = time.perf_counter()
    applied = applied if applied is not None else AppliedPlan()
    problem, targets = day_problem(station, now, end)
    ids = [b.id for b in problem.bookings]
    starts = dict(Booking.select(Booking.id, Booking.start).where(Booking.id.in_(ids)).tuples())
    left = max(0.0, time_budget_s - (time.perf_counter() - began))
    schedule, requests = await asyncio.to_thread(
        replan,
        problem,
        targets,
        applied,
        transactions=transactions,
        unit=unit,
        time_budget_s=left,
        booked_starts=starts,
        now=now,
    )
    for unmet in schedule.unmet:
        log.warning("Booking %s cannot be met in full: %s", unmet.booking_id, unmet.reason)
    results = await send_profiles(commands, requests)
    for request, result in results:
        ok = getattr(result, "ok", True)
        if request.clear:
            if ok:  # else the day it clears stays, so the next re-plan clears it again
                applied.sent.pop(request.key, None)
        elif ok:
            applied.sent[request.key] = request
        else:  # refused or offline: what the charger holds is not known
            applied.sent.pop(request.key, None)
    applied.schedule = schedule
    return schedule, results
