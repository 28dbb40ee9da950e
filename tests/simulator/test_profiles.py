"""The simulator's reading of OCPP 1.6 charging profiles, and its power following them."""

from datetime import UTC, datetime, timedelta

from evcms_desktop.simulator.chargebox import Battery, ChargeBox, SimTransaction
from evcms_desktop.simulator.profiles import limit_kw

T0 = datetime(2026, 12, 1, 7, tzinfo=UTC)


def profile(
    purpose="TxDefaultProfile", stack=0, unit="W", periods=((0, 11000), (1800, 7000)), **extra
):
    return {
        "charging_profile_id": 1,
        "stack_level": stack,
        "charging_profile_purpose": purpose,
        "charging_profile_kind": "Absolute",
        "valid_from": "2026-12-01T07:00:00.000Z",
        "valid_to": "2026-12-01T08:00:00.000Z",
        "charging_schedule": {
            "duration": 3600,
            "start_schedule": "2026-12-01T07:00:00.000Z",
            "charging_rate_unit": unit,
            "charging_schedule_period": [{"start_period": s, "limit": v} for s, v in periods],
        },
        **extra,
    }


def test_period_in_force_gives_the_limit_and_none_outside():
    profiles = [profile()]
    assert limit_kw(profiles, T0) == 11.0
    assert limit_kw(profiles, T0 + timedelta(minutes=29)) == 11.0
    assert limit_kw(profiles, T0 + timedelta(minutes=30)) == 7.0
    assert limit_kw(profiles, T0 + timedelta(hours=1)) is None
    assert limit_kw(profiles, T0 - timedelta(seconds=1)) is None


def test_amperes_become_kilowatts_per_phase():
    amps = profile(unit="A", periods=((0, 16),))
    assert limit_kw([amps], T0) == 16 * 230 * 3 / 1000


def test_tx_profile_of_the_transaction_beats_the_default_and_higher_stack_wins():
    default = profile(periods=((0, 11000),))
    higher = profile(stack=2, periods=((0, 9000),))
    tx = profile(purpose="TxProfile", periods=((0, 4000),), transaction_id=7)
    assert limit_kw([default, higher], T0) == 9.0
    assert limit_kw([default, tx], T0, transaction_id=7) == 4.0
    assert limit_kw([default, tx], T0, transaction_id=8) == 11.0  # another transaction's
    assert limit_kw([default, tx], T0) == 11.0  # no transaction running


def test_relative_profiles_count_from_the_transaction_start():
    relative = profile(charging_profile_kind="Relative", periods=((0, 3000), (600, 5000)))
    started = T0 + timedelta(minutes=20)
    assert limit_kw([relative], started + timedelta(minutes=5), 1, started) == 3.0
    assert limit_kw([relative], started + timedelta(minutes=11), 1, started) == 5.0


def test_simulated_power_follows_the_profile_and_the_battery():
    clock = [T0]
    box = ChargeBox("CP-X", "ws://127.0.0.1:1/ocpp", clock=lambda: clock[0], connectors=1)
    box.connectors[1].profiles.append(profile())
    tx = SimTransaction(1, 1, "TAG", Battery(soc=20), started_at=T0)
    box.advance(tx, 60)
    assert tx.power_kw == 11.0
    assert abs(box.connectors[1].meter_wh - 11000 / 60) < 1e-6
    clock[0] = T0 + timedelta(minutes=40)
    box.advance(tx, 60)
    assert tx.power_kw == 7.0
    clock[0] = T0 + timedelta(hours=2)  # no profile in force: the battery's own limit
    box.advance(tx, 60)
    assert tx.power_kw == 22.0
    full = SimTransaction(2, 1, "TAG", Battery(soc=95), started_at=T0)
    clock[0] = T0
    box.advance(full, 60)
    assert full.power_kw == Battery(soc=95).power_kw() < 11.0  # tapering: below the limit


def held_ids(box: ChargeBox) -> dict[int, list[int]]:
    return {n: [p["charging_profile_id"] for p in s.profiles] for n, s in box.connectors.items()}


def test_a_profile_replaces_one_of_the_same_id_or_stack_level_and_purpose():
    """OCPP 1.6 SetChargingProfile: the same chargingProfileId anywhere on the charger, or
    the same stackLevel and purpose on the connector, is replaced; anything else stacks."""
    box = ChargeBox("CP-X", "ws://127.0.0.1:1/ocpp", connectors=2)

    def send(connector: int, profile_id: int, **fields: object) -> None:
        answer = box.on_set_charging_profile(
            connector, profile(charging_profile_id=profile_id, **fields)
        )
        assert answer.status == "Accepted"

    send(1, 11)
    send(2, 12)  # another connector: both kept
    send(1, 13, stack_level=1)  # another stack level: stacks
    send(1, 14, charging_profile_purpose="TxProfile")  # another purpose: stacks
    assert held_ids(box) == {1: [11, 13, 14], 2: [12]}
    send(1, 15)  # TxDefaultProfile at level 0 on connector 1: replaces 11 only
    assert held_ids(box) == {1: [13, 14, 15], 2: [12]}
    send(1, 12, stack_level=2)  # id 12 is on connector 2: it moves to connector 1
    assert held_ids(box) == {1: [13, 14, 15, 12], 2: []}
    send(0, 16, stack_level=1)  # connector 0: every connector, level 1 replaced on each
    assert held_ids(box) == {1: [14, 15, 12, 16], 2: [16]}
