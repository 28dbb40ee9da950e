"""Table 2 columns and Table 3's four cases, on requests whose outcome is known by hand.

One connector, a Tuesday in March (GMT), the paper's tariff. In booking order:
  0. 13:00-14:00, Peak Off, free                      -> Case 3, ACM 0
  1. 13:00-14:00 again, Peak Off, taken               -> Case 4, ACM 0.25
  2. 17:00-18:00, Peak On, free                       -> Case 1, ACM 0.5
  3. 17:00-18:00 again, Peak On, taken                -> Case 2, ACM 1
Each asks for a full-power hour: 17.6 kWh, so Ec * E + SC = 9.00.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import peewee
import pytest

from evcms_desktop.evaluation.runner import EvaluationRun, StationSetup, run_evaluation
from evcms_desktop.evaluation.scenario import Scenario, ScenarioConfig, ScenarioRequest
from evcms_desktop.evaluation.tables import TABLE2_COLUMNS, table2_record, table3, write_table2
from evcms_desktop.store.models import Booking, database_proxy

DAY = datetime(2027, 3, 2, tzinfo=UTC)
BOOKED_AT = DAY - timedelta(days=1)


def request(tid: int, hour: int) -> ScenarioRequest:
    arrival = DAY + timedelta(hours=hour)
    return ScenarioRequest(
        tid=tid,
        booked_at=BOOKED_AT + timedelta(minutes=tid),
        arrival=arrival,
        duration=timedelta(hours=1),
        energy_kwh=Decimal("17.6"),
        latest_departure=arrival + timedelta(hours=1),
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> EvaluationRun:
    scenario = Scenario(
        ScenarioConfig(bookings=4, connectors=1),
        (request(0, 13), request(1, 13), request(2, 17), request(3, 17)),
    )
    return run_evaluation(
        scenario, StationSetup.with_connectors(1), workdir=tmp_path_factory.mktemp("eval")
    )


def test_the_four_cases_are_classified_as_the_paper_does(run: EvaluationRun) -> None:
    assert [r.case for r in run.rows] == [3, 4, 1, 2]
    records = [table2_record(r) for r in run.rows]
    assert [(r["PS"], r["AS"], r["ACM"]) for r in records] == [
        ("0", "1", "0"),
        ("0", "0", "0.25"),
        ("1", "1", "0.5"),
        ("1", "0", "1"),
    ]


def test_original_prices_follow_the_original_rule(run: EvaluationRun) -> None:
    # Case 4 pays no surcharge in the original system (Table 2 rows 2 and 495).
    assert [r.original.price for r in run.rows] == [
        Decimal("9.00"),
        Decimal("9.00"),
        Decimal("10.50"),
        Decimal("12.00"),
    ]
    assert [r.original.start for r in run.rows] == [r.request.arrival for r in run.rows]
    assert [r.original.plan for r in run.rows] == [1, 0, 1, 0]  # 0: booked over a taken slot


def test_optimized_prices_and_shifts(run: EvaluationRun) -> None:
    opt = [r.optimized for r in run.rows]
    assert all(o is not None for o in opt)
    assert [o.price for o in opt if o] == [
        Decimal("9.00"),
        Decimal("9.75"),  # Case 4 rises by exactly 0.25 * PDC, as in Table 3
        Decimal("9.00"),  # Case 1 falls by 0.5 * PDC
        Decimal("9.00"),  # Case 2 falls by the whole PDC
    ]
    assert [r.shifted for r in run.rows] == [False, False, True, True]
    assert [o.plan for o in opt if o][2:] == [3, 3]  # Plan 3, Duration Eco


def test_table3_averages_per_case(run: EvaluationRun) -> None:
    summary = {s.case: (s.count, s.original, s.optimized) for s in table3(run.rows)}
    assert summary == {
        1: (1, Decimal("10.50"), Decimal("9.00")),
        2: (1, Decimal("12.00"), Decimal("9.00")),
        3: (1, Decimal("9.00"), Decimal("9.00")),
        4: (1, Decimal("9.00"), Decimal("9.75")),
    }


def test_table2_csv(run: EvaluationRun, tmp_path: Path) -> None:
    path = tmp_path / "table2.csv"
    write_table2(run.rows, path)
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == TABLE2_COLUMNS
    assert [(r["TID"], r["Dh"], r["Pow"], r["AC"], r["SPS"], r["OC"]) for r in rows] == [
        ("0", "60", "17.6", "9.00", "0", "9.00"),
        ("1", "60", "17.6", "9.00", "0", "9.75"),
        ("2", "60", "17.6", "10.50", "1", "9.00"),
        ("3", "60", "17.6", "12.00", "1", "9.00"),
    ]


def test_the_store_is_bound_back_to_the_callers_database(
    db: peewee.SqliteDatabase, tmp_path: Path
) -> None:
    scenario = Scenario(ScenarioConfig(bookings=1), (request(0, 13),))
    run_evaluation(scenario, StationSetup.with_connectors(1), workdir=tmp_path)
    assert database_proxy.obj is db
    assert Booking.select().count() == 0  # nothing was booked in the caller's database
