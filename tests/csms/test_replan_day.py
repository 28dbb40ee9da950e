"""The live re-plan through replan_day: bookings read from the store (SQLite and
PostgreSQL), profiles sent over a real WebSocket to simulated chargers."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import peewee
import pytest

from evcms_desktop.csms.plan_keeper import PlanKeeper
from evcms_desktop.csms.protocol import parse_timestamp
from evcms_desktop.csms.schedule_applier import (
    DAY_PROFILE_BASE,
    AppliedPlan,
    ProfileRequest,
    day_problem,
    replan,
    replan_day,
)
from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from evcms_desktop.csms.sessions import OpenTransaction
from evcms_desktop.domain.validation import PlanRequest
from evcms_desktop.schedule import ScheduleBooking
from evcms_desktop.schedule.milp import MAX_POWER_CHANGES
from evcms_desktop.schedule.optimal import power_changes
from evcms_desktop.simulator.chargebox import Battery, ChargeBox, SimTransaction
from evcms_desktop.simulator.profiles import limit_kw
from evcms_desktop.store.bookings import BookingService
from evcms_desktop.store.models import Booking, ChargePoint, Connector, Station
from tests.conftest import NOW

T = TypeVar("T")
END = NOW + timedelta(days=1)


def book(service: BookingService, hours: float, duration: float, kwh: str) -> Booking:
    outcome = service.plan(
        PlanRequest(
            arrival=NOW + timedelta(hours=hours),
            duration=timedelta(hours=duration),
            energy_kwh=Decimal(kwh),
        )
    )
    return service.confirm(outcome, outcome.plans[0])


def sent_ids(results: Iterable[tuple[ProfileRequest, Any]]) -> set[int]:
    """The bookings whose plans the requests carried."""
    return {booking_id for request, _ in results for booking_id in request.booking_ids}


class RecordingBox(ChargeBox):
    """A simulated charger that keeps every CALL it receives: [action, payload]."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def route_message(self, raw_msg: str | bytes) -> None:
        frame = json.loads(raw_msg)
        if frame[0] == 2:  # a CALL from the central system
            self.calls.append((frame[2], frame[3]))
        await super().route_message(raw_msg)

    def profile_calls(self) -> list[tuple[str, dict[str, Any]]]:
        return [c for c in self.calls if c[0] in ("SetChargingProfile", "ClearChargingProfile")]


def with_chargers(
    db: peewee.Database,
    tmp_path: Path,
    body: Callable[[CentralSystem, list[RecordingBox]], Awaitable[T]],
) -> T:
    """Run `body` with the central system up and CP-A and CP-B connected and booted.

    Its timers do not tick during the test: its own re-planner, woken by the test's new
    bookings, would send profiles of its own between the test's re-plans.
    """
    config = CsmsConfig(data_dir=tmp_path, port=0, tick_seconds=3600, probe_features=False)
    cs = CentralSystem(config, db, clock=lambda: NOW)

    async def scenario() -> T:
        await cs.start()
        try:
            url = f"ws://127.0.0.1:{cs.port}{config.path_prefix}"
            boxes = [
                RecordingBox(ident, url, clock=lambda: NOW, meter_interval=3600)
                for ident in ("CP-A", "CP-B")
            ]
            for box in boxes:
                await box.connect()
                assert await box.boot() == "Accepted"
            try:
                return await body(cs, boxes)
            finally:
                for box in boxes:
                    await box.close()
        finally:
            await cs.stop()

    return asyncio.run(asyncio.wait_for(scenario(), 60))


def held(
    boxes: list[ChargeBox], requests: Iterable[ProfileRequest], booking_id: int
) -> list[dict[str, Any]]:
    """The profiles the chargers hold for a booking: those of the requests that carried it
    (its connector's day, or its TxProfile)."""
    wanted = {
        (r.charge_point, r.connector, r.profile["chargingProfileId"])
        for r in requests
        if booking_id in r.booking_ids
    }
    return [
        p
        for box in boxes
        for number, state in box.connectors.items()
        for p in state.profiles
        if (box.id, number, p["charging_profile_id"]) in wanted
    ]


def test_a_session_later_than_its_booking_holds_the_car_at_zero_until_it_starts(
    db: peewee.Database, station: Station, tmp_path: Path
) -> None:
    """10:00-13:00 on a weekday: 10:00-11:00 is Peak On, so the cheapest session is an hour
    at full power from 11:00. Without a profile a car plugged in at 10:00 would charge at
    once, at full power, in Peak On."""
    station.site_power_limit_kw = Decimal(50)
    station.save()
    booking = book(BookingService(db, station, clock=lambda: NOW), 4, 3, "17.6")

    async def body(cs: CentralSystem, boxes: list[ChargeBox]) -> Any:
        schedule, results = await replan_day(cs.commands, station, NOW, END)
        requests = [request for request, _ in results]
        [box] = [box for box in boxes if held([box], requests, booking.id)]
        return schedule, results, held(boxes, requests, booking.id), box

    schedule, results, profiles, box = with_chargers(db, tmp_path, body)
    plan = schedule.plans[booking.id]
    assert plan.first_slot > booking.start  # the case: the session starts after the car may
    assert [r.booking_ids for r, _ in results] == [(booking.id,)]
    [profile] = profiles
    charging = profile["charging_schedule"]
    assert parse_timestamp(charging["start_schedule"]) == booking.start
    periods = [(p["start_period"], p["limit"]) for p in charging["charging_schedule_period"]]
    held_s = int((plan.first_slot - booking.start).total_seconds())
    assert periods == [(0, 0.0), (held_s, float(int(plan.powers_kw[0] * 1000)))]
    # The simulated charger draws nothing before the session, and the session's power in it.
    for moment, kw in ((booking.start, 0.0), (plan.first_slot, min(22.0, plan.powers_kw[0]))):
        box.clock = lambda moment=moment: moment + timedelta(seconds=1)
        tx = SimTransaction(7, results[0][0].connector, "TAG", Battery(soc=20), started_at=moment)
        box.advance(tx, 60)
        assert tx.power_kw == kw


def test_a_replan_sends_only_what_changed_and_keeps_the_running_session(
    db: peewee.Database, station: Station, tmp_path: Path
) -> None:
    station.site_power_limit_kw = Decimal(22)  # two cars at once must share 22 kW
    station.save()
    service = BookingService(db, station, clock=lambda: NOW)
    first, second = book(service, 1, 2, "12"), book(service, 1, 2, "12")
    applied = AppliedPlan()
    later = NOW + timedelta(hours=1, minutes=30)

    async def body(cs: CentralSystem, boxes: list[ChargeBox]) -> Any:
        replans = [await replan_day(cs.commands, station, NOW, END, applied=applied)]
        replans.append(await replan_day(cs.commands, station, NOW, END, applied=applied))
        third = book(service, 2, 2, "12")  # overlaps both for an hour: 22 kW three ways
        replans.append(await replan_day(cs.commands, station, NOW, END, applied=applied))
        before = [dict(p) for p in held(boxes, applied.sent.values(), first.id)]
        # Half an hour into the first session, its car charging, a fourth booking comes.
        fourth = book(service, 2, 3, "10")
        replans.append(
            await replan_day(
                cs.commands, station, later, END, transactions={first.id: 1}, applied=applied
            )
        )
        return replans, third, fourth, before, held(boxes, applied.sent.values(), first.id), boxes

    replans, third, fourth, before, after, boxes = with_chargers(db, tmp_path, body)
    (one, sent_one), (two, sent_two), (three, sent_three), (four, sent_four) = replans
    assert one.method == "profiles" and one.feasible  # under a limit: power profiles
    assert sent_ids(sent_one) == {first.id, second.id}
    assert all(result.ok for _, result in sent_one + sent_three + sent_four)
    assert sent_two == []  # nothing changed: nothing sent again
    assert two.plans == one.plans
    assert third.id in sent_ids(sent_three)
    assert fourth.id in sent_ids(sent_four)
    for schedule in (one, two, three, four):
        assert schedule.site_kw.max() <= 22 + 1e-9
        for plan in schedule.plans.values():
            assert power_changes(plan.powers_kw) <= MAX_POWER_CHANGES
    # The running session keeps its plan from its last re-plan on, and is not sent again:
    # the charger holds the very profile it held, past and future.
    kept = three.plans[first.id]
    skip = (later - kept.first_slot) // kept.slot
    assert four.plans[first.id].powers_kw == kept.powers_kw[max(0, skip) :]
    assert first.id not in sent_ids(sent_four)
    assert after == before and len(after) == 1
    # What each charger holds is what the last accepted request for its booking said.
    for request in applied.sent.values():
        [box] = [box for box in boxes if box.id == request.charge_point]
        [profile] = [
            p
            for p in box.connectors[request.connector].profiles
            if p["charging_profile_id"] == request.profile["chargingProfileId"]
        ]
        periods = profile["charging_schedule"]["charging_schedule_period"]
        sent = request.profile["chargingSchedule"]["chargingSchedulePeriod"]
        assert [(p["start_period"], p["limit"]) for p in periods] == [
            (p["startPeriod"], p["limit"]) for p in sent
        ]


def test_the_profile_of_an_unchanged_plan_is_not_sent_again_later_in_its_window(
    db: peewee.Database, station: Station, tmp_path: Path
) -> None:
    """A session held until it starts is held from its booked start, not from the time of
    the re-plan: re-planning inside the window changes nothing and sends nothing."""
    station.site_power_limit_kw = Decimal(50)
    station.save()
    booking = book(BookingService(db, station, clock=lambda: NOW), 4, 3, "17.6")
    applied = AppliedPlan()

    async def body(cs: CentralSystem, boxes: list[ChargeBox]) -> Any:
        first = await replan_day(cs.commands, station, NOW, END, applied=applied)
        inside = booking.start + timedelta(minutes=20)  # no car yet, before its session
        again = await replan_day(cs.commands, station, inside, END, applied=applied)
        return first, again

    (schedule, sent), (replanned, sent_again) = with_chargers(db, tmp_path, body)
    assert [r.booking_ids for r, _ in sent] == [(booking.id,)]
    assert replanned.plans[booking.id].first_slot == schedule.plans[booking.id].first_slot
    assert sent_again == []


def test_two_bookings_on_one_connector_each_keep_their_own_limits(
    db: peewee.Database, station: Station, tmp_path: Path
) -> None:
    """OCPP 1.6: a TxDefaultProfile replaces the one of the same stack level and purpose on
    its connector. Two bookings on one connector, both held back by an 11 kW site limit:
    the charger's composite schedule at a moment in each booking's session is that
    booking's own plan, not full power and not the other booking's limit."""
    station.site_power_limit_kw = Decimal(11)
    station.save()
    service = BookingService(db, station, clock=lambda: NOW)
    first, second = book(service, 1, 2, "11"), book(service, 4, 2, "11")
    assert first.connector_id == second.connector_id  # the case: one connector, two days' parts
    ident, number = first.connector.charge_point.ident, first.connector.number

    async def body(cs: CentralSystem, boxes: list[ChargeBox]) -> Any:
        schedule, results = await replan_day(cs.commands, station, NOW, END)
        [box] = [box for box in boxes if box.id == ident]
        composite = {}
        for booking in (first, second):
            plan = schedule.plans[booking.id]
            slot = next(i for i, kw in enumerate(plan.powers_kw) if kw > 0)
            moment = plan.first_slot + slot * plan.slot + timedelta(minutes=1)
            box.clock = lambda moment=moment: moment
            answer = await cs.commands.get_composite_schedule(ident, number, 60, "W")
            assert answer.ok, answer
            periods = answer.payload["chargingSchedule"]["chargingSchedulePeriod"]
            composite[booking.id] = (periods[0]["limit"], plan.powers_kw[slot])
        return results, composite

    results, composite = with_chargers(db, tmp_path, body)
    assert results and all(answer.ok for _, answer in results)
    for booking_id, (limit, planned_kw) in composite.items():
        assert planned_kw < 22, "the case: a plan held below the connector's 22 kW"
        assert limit == float(math.floor(planned_kw * 1000 + 1e-6)), booking_id


def test_a_cancelled_bookings_day_profile_is_cleared_from_its_charger(
    db: peewee.Database, station: Station, tmp_path: Path
) -> None:
    """The only booking on a connector is cancelled: its day profile would hold the next
    car there to the cancelled plan's limits. The charger gets a ClearChargingProfile of
    that profile and holds nothing after it."""
    station.site_power_limit_kw = Decimal(50)
    service = BookingService(db, station, clock=lambda: NOW)
    station.save()
    booking = book(service, 4, 3, "17.6")  # held at zero until its Peak Off session
    ident, number = booking.connector.charge_point.ident, booking.connector.number
    applied = AppliedPlan()

    async def body(cs: CentralSystem, boxes: list[RecordingBox]) -> Any:
        [box] = [box for box in boxes if box.id == ident]
        await replan_day(cs.commands, station, NOW, END, applied=applied)
        held_before = list(box.connectors[number].profiles)
        box.calls.clear()
        service.cancel(booking.code)
        _, results = await replan_day(cs.commands, station, NOW, END, applied=applied)
        return held_before, box.profile_calls(), box.connectors[number].profiles, results

    held_before, calls, held_after, results = with_chargers(db, tmp_path, body)
    assert [p["charging_profile_id"] for p in held_before] == [DAY_PROFILE_BASE + number]
    assert calls == [
        ("ClearChargingProfile", {"id": DAY_PROFILE_BASE + number, "connectorId": number})
    ]
    assert held_after == []
    assert all(answer.ok for _, answer in results)
    assert applied.sent == {}  # nothing held: a later booking there gets a new day


def test_a_day_profile_is_not_sent_again_when_one_of_its_bookings_has_passed(
    db: peewee.Database, station: Station, tmp_path: Path
) -> None:
    """Two bookings on one connector, both held below full power: once the first is over,
    a re-plan (the second's plan unchanged) sends the charger nothing."""
    station.site_power_limit_kw = Decimal(11)
    station.save()
    service = BookingService(db, station, clock=lambda: NOW)
    first, second = book(service, 1, 2, "11"), book(service, 4, 2, "11")
    assert first.connector_id == second.connector_id  # the case: one connector's day
    applied = AppliedPlan()
    after_first = first.end + timedelta(minutes=30)

    async def body(cs: CentralSystem, boxes: list[RecordingBox]) -> Any:
        schedule, _ = await replan_day(cs.commands, station, NOW, END, applied=applied)
        for box in boxes:
            box.calls.clear()
        later, results = await replan_day(cs.commands, station, after_first, END, applied=applied)
        return schedule, later, results, [c for box in boxes for c in box.profile_calls()]

    schedule, later, results, calls = with_chargers(db, tmp_path, body)
    assert first.id not in later.plans  # over: not planned again
    assert later.plans[second.id].powers_kw == schedule.plans[second.id].powers_kw
    assert results == [] and calls == []


def test_the_schedules_txprofile_stacks_above_the_plan_keepers_and_both_stay(
    db: peewee.Database, station: Station, tmp_path: Path
) -> None:
    """A car starts its booked session: the plan keeper holds it to the booked power (a
    TxProfile). The site schedule then sends its own TxProfile for that transaction: both
    stay on the charger at distinct stack levels, and the schedule's, higher, is obeyed."""
    station.site_power_limit_kw = Decimal(22)
    station.save()
    service = BookingService(db, station, clock=lambda: NOW)
    first = book(service, 1, 2, "12")
    book(service, 1, 2, "12")  # beside it: 22 kW two ways, the schedule holds both below
    ident, number = first.connector.charge_point.ident, first.connector.number
    inside = first.start + timedelta(minutes=30)
    tx_id = 41

    async def body(cs: CentralSystem, boxes: list[RecordingBox]) -> Any:
        [box] = [box for box in boxes if box.id == ident]
        opened = OpenTransaction(
            id=tx_id,
            charge_point=ident,
            station_id=station.id,
            connector=number,
            id_tag=first.code,
            meter_start_wh=0,
            booking_id=first.id,
            booking_code=first.code,
            booking_end=first.end,
            target_kwh=first.energy_kwh,
        )
        assert await PlanKeeper(cs.commands, lambda *a, **k: None).limit_at_start(ident, opened)
        schedule, results = await replan_day(
            cs.commands, station, inside, END, transactions={first.id: tx_id}
        )
        return box.profile_calls(), list(box.connectors[number].profiles), schedule, results

    calls, profiles, schedule, results = with_chargers(db, tmp_path, body)
    tx_profiles = [
        payload["csChargingProfiles"]
        for action, payload in calls
        if action == "SetChargingProfile"
        and payload["csChargingProfiles"]["chargingProfilePurpose"] == "TxProfile"
    ]
    assert [p["stackLevel"] for p in tx_profiles] == [0, 1]  # the plan's, then the schedule's
    assert sorted(p["stack_level"] for p in profiles if p.get("transaction_id") == tx_id) == [0, 1]
    plan = schedule.plans[first.id]
    moment = inside + timedelta(minutes=1)
    slot = (moment - plan.first_slot) // plan.slot
    expected = math.floor(plan.powers_kw[slot] * 1000 + 1e-6) / 1000
    assert limit_kw(profiles, moment, tx_id, first.start) == expected
    assert all(answer.ok for _, answer in results)


def test_the_live_problem_knows_each_connectors_power_and_keeps_sessions_within_it(
    db: peewee.Database, station: Station, tmp_path: Path
) -> None:
    """CP-B's connectors give 7 kW, CP-A's 22 kW: the day's problem carries each
    connector's power, and three cars that each need a whole hour at 22 kW, booked for the
    same hour, are never planned on CP-B at 22 kW (the third is left short instead)."""
    station.site_power_limit_kw = Decimal(88)
    station.save()
    Connector.update(max_power_kw=Decimal(7)).where(
        Connector.charge_point.in_(ChargePoint.select().where(ChargePoint.ident == "CP-B"))
    ).execute()
    problem, targets = day_problem(station, NOW, END)
    power = {c: Decimal(str(t.max_power_kw)) for c, t in targets.items()}
    assert problem.connector_power_kw == tuple(power[c] for c in problem.connector_ids)
    fast = [c for c in problem.connector_ids if power[c] == 22]
    cars = tuple(
        ScheduleBooking(
            id=n,
            earliest=NOW + timedelta(hours=1),
            latest=NOW + timedelta(hours=2),
            energy_kwh=Decimal("17.6"),
            max_power_kw=Decimal(22),
            connector_id=fast[n % 2],
        )
        for n in range(3)
    )
    schedule, requests = replan(replace(problem, bookings=cars), targets, AppliedPlan())
    for plan in schedule.plans.values():
        assert max(plan.powers_kw) <= float(power[plan.connector_id]) + 1e-9, plan
    [short] = schedule.unmet
    assert short.booking_id == 2 and short.shortfall_kwh == pytest.approx(17.6)
    assert {(r.charge_point, r.connector) for r in requests} <= {("CP-A", 1), ("CP-A", 2)}
