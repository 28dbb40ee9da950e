"""A day's schedule sent by the central system reaches the simulated charger as profiles,
and the simulator's power follows them."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import peewee

from evcms_desktop.csms.protocol import parse_timestamp
from evcms_desktop.csms.schedule_applier import DAY_PROFILE_BASE, replan_day
from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from evcms_desktop.domain.validation import PlanRequest
from evcms_desktop.simulator.chargebox import Battery, ChargeBox, SimTransaction
from evcms_desktop.store.bookings import BookingService
from evcms_desktop.store.models import Station
from tests.conftest import NOW


def test_replan_sends_profiles_the_charger_accepts(
    db: peewee.SqliteDatabase, station: Station, tmp_path: Path
) -> None:
    station.site_power_limit_kw = Decimal(22)  # two cars at once must share 22 kW
    station.save()
    service = BookingService(db, station, clock=lambda: NOW)
    bookings = []
    for _ in range(2):  # 07:00-09:00, Peak Off, a full-power hour each
        outcome = service.plan(
            PlanRequest(
                arrival=NOW + timedelta(hours=1),
                duration=timedelta(hours=2),
                energy_kwh=Decimal("17.6"),
            )
        )
        bookings.append(service.confirm(outcome, outcome.plans[0]))
    assert {b.connector.charge_point.ident for b in bookings} == {"CP-A"}
    config = CsmsConfig(data_dir=tmp_path, port=0, tick_seconds=0.05, probe_features=False)
    cs = CentralSystem(config, db, clock=lambda: NOW)

    async def scenario():
        await cs.start()
        try:
            url = f"ws://127.0.0.1:{cs.port}{config.path_prefix}"
            box = ChargeBox("CP-A", url, clock=lambda: NOW, meter_interval=3600)
            await box.connect()
            assert await box.boot() == "Accepted"
            schedule, results = await replan_day(cs.commands, station, NOW, NOW + timedelta(days=1))
            await box.close()
            return schedule, results, box
        finally:
            await cs.stop()

    schedule, results, box = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert schedule.feasible
    assert schedule.site_kw.max() <= 22 + 1e-9
    assert results and all(result.ok for _, result in results)
    received = {
        (number, p["charging_profile_id"]): p
        for number, state in box.connectors.items()
        for p in state.profiles
    }
    for request, _ in results:
        profile = received[(request.connector, request.profile["chargingProfileId"])]
        assert profile["charging_profile_purpose"] == "TxDefaultProfile"
        sent = request.profile["chargingSchedule"]["chargingSchedulePeriod"]
        got = profile["charging_schedule"]["charging_schedule_period"]
        assert [(p["start_period"], p["limit"]) for p in got] == [
            (p["startPeriod"], p["limit"]) for p in sent
        ]
        # The charger's power follows the limit of each period while it is in force.
        start = parse_timestamp(request.profile["chargingSchedule"]["startSchedule"])
        for period in sent:
            at = start + timedelta(seconds=period["startPeriod"] + 1)
            box.clock = lambda at=at: at
            tx = SimTransaction(99, request.connector, "TAG", Battery(soc=20), started_at=at)
            box.advance(tx, 60)
            assert tx.power_kw == min(22.0, period["limit"] / 1000)


def test_a_new_booking_replans_the_day_on_a_limited_site(
    db: peewee.SqliteDatabase, station: Station, tmp_path: Path
) -> None:
    station.site_power_limit_kw = Decimal(22)
    station.save()
    service = BookingService(db, station, clock=lambda: NOW)
    request = PlanRequest(
        arrival=NOW + timedelta(hours=1), duration=timedelta(hours=2), energy_kwh=Decimal("17.6")
    )
    first = service.plan(request)
    service.confirm(first, first.plans[0])
    config = CsmsConfig(data_dir=tmp_path, port=0, tick_seconds=0.05, probe_features=False)
    cs = CentralSystem(config, db, clock=lambda: NOW)

    async def scenario() -> dict[int, list[dict]]:
        await cs.start()
        try:
            url = f"ws://127.0.0.1:{cs.port}{config.path_prefix}"
            box = ChargeBox("CP-A", url, clock=lambda: NOW, meter_interval=3600)
            await box.connect()
            assert await box.boot() == "Accepted"
            await asyncio.sleep(0.2)  # the central system has seen today's bookings
            assert not any(state.profiles for state in box.connectors.values())
            second = service.plan(request)  # the same two hours: the 22 kW must be shared
            booked = service.confirm(second, second.plans[0])
            number = booked.connector.number
            while not any(  # its connector's day, which carries its plan
                p["charging_profile_id"] == DAY_PROFILE_BASE + number
                for p in box.connectors[number].profiles
            ):
                await asyncio.sleep(0.05)
            await box.close()
            return {n: state.profiles for n, state in box.connectors.items()}
        finally:
            await cs.stop()

    profiles = asyncio.run(asyncio.wait_for(scenario(), 30))
    limits = [
        period["limit"]
        for sent in profiles.values()
        for p in sent
        for period in p["charging_schedule"]["charging_schedule_period"]
    ]
    assert limits and max(limits) <= 22000
