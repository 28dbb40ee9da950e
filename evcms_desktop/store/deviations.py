"""What chargers sent outside the letter of OCPP 1.6 and the central system tolerated:
one row per charger and kind, with a count and the last example."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from evcms_desktop.store.models import ChargePoint, ChargerDeviation

EXAMPLE_MAX = 300


@dataclass(frozen=True)
class DeviationCount:
    """Deviations of one kind from one charger, seen since the last flush (or ever)."""

    charge_point: str
    kind: str
    count: int
    example: str
    first_at: datetime
    last_at: datetime


def add_deviations(counts: Iterable[DeviationCount]) -> None:
    """Add counts to the stored ones; unknown chargers are skipped."""
    ids = {}
    for item in counts:
        if item.charge_point not in ids:
            cp = ChargePoint.get_or_none(ChargePoint.ident == item.charge_point)
            ids[item.charge_point] = cp.id if cp is not None else None
        cp_id = ids[item.charge_point]
        if cp_id is None:
            continue
        ChargerDeviation.insert(
            charge_point=cp_id,
            kind=item.kind,
            count=item.count,
            last_example=item.example[:EXAMPLE_MAX],
            first_at=item.first_at,
            last_at=item.last_at,
        ).on_conflict(
            conflict_target=[ChargerDeviation.charge_point, ChargerDeviation.kind],
            update={
                ChargerDeviation.count: ChargerDeviation.count + item.count,
                ChargerDeviation.last_example: item.example[:EXAMPLE_MAX],
                ChargerDeviation.last_at: item.last_at,
            },
        ).execute()


def deviations_of(ident: str) -> list[DeviationCount]:
    """A charger's stored deviations, the most frequent first."""
    query = (
        ChargerDeviation.select()
        .join(ChargePoint)
        .where(ChargePoint.ident == ident)
        .order_by(ChargerDeviation.count.desc(), ChargerDeviation.kind)
    )
    return [
        DeviationCount(ident, d.kind, d.count, d.last_example, d.first_at, d.last_at) for d in query
    ]


def deviation_totals() -> dict[str, dict[str, int]]:
    """Every charger's deviation counts by kind: {ident: {kind: count}}."""
    totals: dict[str, dict[str, int]] = {}
    query = cast(
        "Iterable[tuple[str, str, int]]",
        ChargerDeviation.select(ChargePoint.ident, ChargerDeviation.kind, ChargerDeviation.count)
        .join(ChargePoint)
        .order_by(ChargePoint.ident, ChargerDeviation.count.desc(), ChargerDeviation.kind)
        .tuples(),
    )
    for ident, kind, count in query:
        totals.setdefault(ident, {})[kind] = count
    return totals


def summarize(kinds: dict[str, int]) -> str:
    """`extra_field x3, number_as_string x120`, or `-` when there are none."""
    return ", ".join(f"{kind} x{count}" for kind, count in kinds.items()) or "-"
