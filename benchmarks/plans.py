"""Time to generate the plans of one request, store query included.

(a) a day holding 1,000 bookings on 8 connectors;
(b) the same day inside a year of history holding 100,000 bookings.
Targets: p99 under 2 ms in (a); (b) no slower than (a) by more than 2x.

    .venv/bin/python benchmarks/plans.py [--runs 500]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from evcms_desktop.domain.plans import generate_plans
from evcms_desktop.domain.validation import PlanRequest
from evcms_desktop.store.bookings import BookingService
from evcms_desktop.store.database import open_database
from evcms_desktop.store.models import Booking, ChargePoint, Connector, Station

DAY = datetime(2027, 3, 2, tzinfo=UTC)  # a Tuesday
CONNECTORS = 8
PER_DAY = 1_000


def booking_row(station: int, connector: int, start: datetime, minutes: int, code: str) -> dict:
    end = start + timedelta(minutes=minutes)
    return {
        "code": code,
        "station": station,
        "connector": connector,
        "start": start,
        "end": end,
        "requested_start": start,
        "requested_end": end,
        "energy_kwh": Decimal("5"),
        "power_kw": Decimal("17.6"),
        "plan": 1,
        "peak_on": False,
        "overlapped": False,
        "acm": Decimal(0),
        "price_energy": Decimal("2.5"),
        "price_time_of_use": Decimal(0),
        "price_service": Decimal("0.2"),
        "price_total": Decimal("2.7"),
    }


def day_rows(
    station: int, connectors: list[int], day: datetime, count: int, tag: str
) -> list[dict]:
    """`count` bookings packed over the day: every connector busy around the clock but the
    last, which is free from 12:00 to 18:00. A 17:00 request reads the whole day and finds
    its slots there.
    """
    per_connector = count // len(connectors)
    rows = []
    for cid in connectors:
        offset, span = (18, 18) if cid == connectors[-1] else (0, 24)
        spacing = timedelta(hours=span) / per_connector
        minutes = max(1, int(spacing.total_seconds() // 60) - 3)
        for i in range(per_connector):
            start = day + (timedelta(hours=offset) + i * spacing) % timedelta(days=1)
            rows.append(booking_row(station, cid, start, minutes, f"{tag}{cid:02d}{i:04d}"))
    return rows


def build(path: Path, history: int) -> BookingService:
    db = open_database(path)
    station = Station.get()
    cp = ChargePoint.create(ident="BENCH", station=station)
    connectors = [Connector.create(charge_point=cp, number=n).id for n in range(1, CONNECTORS + 1)]
    rows = day_rows(station.id, connectors, DAY, PER_DAY, "D")
    rng = random.Random(7)
    days = [DAY + timedelta(days=d) for d in range(-300, 65) if d not in (-1, 0, 1)]
    for n in range(history):
        start = rng.choice(days) + timedelta(minutes=15 * rng.randrange(96))
        rows.append(booking_row(station.id, rng.choice(connectors), start, 45, f"H{n:08d}"))
    with db.atomic():
        for i in range(0, len(rows), 500):
            Booking.insert_many(rows[i : i + 500]).execute()
    now = DAY - timedelta(days=1)
    return BookingService(db, station, clock=lambda: now)


def measure(service: BookingService, runs: int) -> tuple[list[float], list[float], int]:
    request = PlanRequest(
        DAY + timedelta(hours=17), timedelta(hours=1), Decimal("17.6"), Decimal("11")
    )
    total, domain_only = [], []
    plans = 0
    for _ in range(runs):
        t0 = time.perf_counter()
        outcome = service.plan(request)
        total.append(time.perf_counter() - t0)
        site = service.site()
        occupancy = service.occupancy(site, request.arrival)
        t0 = time.perf_counter()
        generate_plans(site, request, occupancy, service.clock())
        domain_only.append(time.perf_counter() - t0)
        plans = len(outcome.plans)
    return total, domain_only, plans


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, history in (("a", 0), ("b", 100_000 - PER_DAY)):
            service = build(Path(tmp) / f"{name}.sqlite3", history)
            count = Booking.select().count()
            measure(service, 20)  # warm caches
            total, domain_only, plans = measure(service, args.runs)
            results[name] = statistics.median(total)
            print(
                f"({name}) {count:>7,} bookings: plans of one request ({plans} plans)"
                f"  median {statistics.median(total) * 1e3:.3f} ms"
                f"  p99 {p99(total) * 1e3:.3f} ms"
                f"  | domain only: median {statistics.median(domain_only) * 1e3:.3f} ms"
                f"  p99 {p99(domain_only) * 1e3:.3f} ms"
            )
            service.db.close()
    print(f"ratio (b)/(a) of medians: {results['b'] / results['a']:.2f} (target <= 2)")


if __name__ == "__main__":
    main()
