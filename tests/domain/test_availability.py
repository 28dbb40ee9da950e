from datetime import UTC, datetime, timedelta

import pytest

from evcms_desktop.domain.availability import (
    ConnectorTimeline,
    Occupancy,
    find_nearest_slot,
    find_slot,
)

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
STEP = timedelta(minutes=15)
HOUR = timedelta(hours=1)
DAY = timedelta(hours=24)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def stepwise(occupancy, connectors, start, duration, step, horizon):
    """Algorithm 1 as the paper writes it: test every step against every booking."""
    k = 0
    while start + k * step <= start + horizon:
        candidate = start + k * step
        for cid in connectors:
            if occupancy.timeline(cid).is_free(candidate, candidate + duration):
                return k == 0, candidate, cid
        k += 1
    return False, None, None


def test_free_slot_is_taken_where_asked():
    found = find_slot(Occupancy(), [1], T0, HOUR, STEP, DAY)
    assert (found.was_available, found.start, found.connector_id) == (True, T0, 1)


def test_overlap_moves_the_start_in_steps_past_the_booking():
    occupancy = Occupancy({1: [(at(-30), at(50))]})
    found = find_slot(occupancy, [1], T0, HOUR, STEP, DAY)
    assert not found.was_available
    assert found.start == at(60)  # 50 rounded up to the 15-minute grid from T0


def test_a_second_connector_makes_the_slot_available():
    occupancy = Occupancy({1: [(at(0), at(60))]})
    found = find_slot(occupancy, [1, 2], T0, HOUR, STEP, DAY)
    assert (found.was_available, found.connector_id, found.start) == (True, 2, T0)


def test_a_slot_needs_one_connector_free_for_the_whole_interval():
    # Each connector is free for part of the hour, none for all of it.
    occupancy = Occupancy({1: [(at(0), at(30))], 2: [(at(30), at(90))]})
    found = find_slot(occupancy, [1, 2], T0, HOUR, STEP, DAY)
    assert (found.start, found.connector_id) == (at(30), 1)


def test_back_to_back_bookings_do_not_overlap():
    occupancy = Occupancy({1: [(at(-60), at(0)), (at(60), at(120))]})
    assert find_slot(occupancy, [1], T0, HOUR, STEP, DAY).was_available


def test_search_is_bounded_by_the_horizon():
    occupancy = Occupancy({1: [(at(0), at(3000))]})
    found = find_slot(occupancy, [1], T0, HOUR, STEP, DAY)
    assert not found.found
    assert found.probes < 5  # jumps straight past the long booking


def test_overlapping_busy_intervals_on_one_connector_are_handled():
    timeline = ConnectorTimeline([(at(0), at(120)), (at(10), at(20))])
    assert timeline.blocked_until(at(60), at(70)) == at(120)
    assert timeline.is_free(at(120), at(180))


@pytest.mark.parametrize("seed", range(30))
def test_jumping_search_equals_the_stepwise_algorithm(seed):
    import random

    rng = random.Random(seed)
    busy = {
        cid: [
            (at(s), at(s + rng.choice([15, 30, 45, 60, 75, 120])))
            for s in sorted(rng.sample(range(-120, 1500, 5), 12))
        ]
        for cid in (1, 2, 3)
    }
    occupancy = Occupancy(busy)
    duration = timedelta(minutes=rng.choice([30, 60, 75, 120]))
    expected = stepwise(occupancy, [1, 2, 3], T0, duration, STEP, DAY)
    found = find_slot(occupancy, [1, 2, 3], T0, duration, STEP, DAY)
    assert (found.was_available, found.start, found.connector_id) == expected


def test_nearest_slot_prefers_the_closer_side_and_later_on_a_tie():
    accept_all = lambda a, b: True  # noqa: E731
    occupancy = Occupancy({1: [(at(0), at(60))]})
    found = find_nearest_slot(occupancy, [1], T0, HOUR, STEP, DAY, accept_all)
    assert found.start == at(60)  # +60 and -60 tie; the later one wins
    occupancy = Occupancy({1: [(at(-15), at(60))]})
    found = find_nearest_slot(occupancy, [1], T0, HOUR, STEP, DAY, accept_all)
    assert found.start == at(60)
    occupancy = Occupancy({1: [(at(0), at(90))]})
    found = find_nearest_slot(occupancy, [1], T0, HOUR, STEP, DAY, accept_all)
    assert found.start == at(-60)


def test_nearest_slot_respects_acceptance_and_not_before():
    found = find_nearest_slot(
        Occupancy(),
        [1],
        T0,
        HOUR,
        STEP,
        DAY,
        accept=lambda a, b: a >= at(120) or b <= at(-30),
        not_before=at(-30),
    )
    assert found.start == at(120)


def test_invalid_search_arguments():
    with pytest.raises(ValueError):
        find_slot(Occupancy(), [1], T0, timedelta(0), STEP, DAY)
