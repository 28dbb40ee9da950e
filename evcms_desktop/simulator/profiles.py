"""The power limit a charge point's stored charging profiles set at a moment (OCPP 1.6 3.13).

The simulator keeps profiles as the `ocpp` library hands them over (snake_case). At a
given time, a TxProfile of the running transaction wins over a TxDefaultProfile, and
within a purpose the valid profile with the highest stack level counts; its schedule's
period in force gives the limit. Limits in A become kW at 230 V per phase.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from evcms_desktop.csms.protocol import parse_timestamp

VOLTAGE = 230.0
DEFAULT_PHASES = 3
PURPOSE_RANK = {"TxProfile": 2, "TxDefaultProfile": 1, "ChargePointMaxProfile": 0}


def _schedule_start(profile: dict[str, Any], transaction_start: datetime | None) -> datetime | None:
    schedule = profile["charging_schedule"]
    kind = profile.get("charging_profile_kind", "Absolute")
    if kind == "Relative":
        return transaction_start
    start = schedule.get("start_schedule") or profile.get("valid_from")
    return parse_timestamp(start) if start else transaction_start


def _valid(profile: dict[str, Any], at: datetime, transaction_id: int | None) -> bool:
    if profile.get("valid_from") and at < parse_timestamp(profile["valid_from"]):
        return False
    if profile.get("valid_to") and at >= parse_timestamp(profile["valid_to"]):
        return False
    if profile.get("charging_profile_purpose") == "TxProfile":
        return transaction_id is not None and profile.get("transaction_id") in (
            None,
            transaction_id,
        )
    return True


def period_limit_kw(profile: dict[str, Any], at: datetime, start: datetime) -> float | None:
    """The limit of the schedule period in force at `at`, or None outside the schedule."""
    schedule = profile["charging_schedule"]
    if profile.get("charging_profile_kind") == "Recurring":
        cycle = timedelta(days=7 if profile.get("recurrency_kind") == "Weekly" else 1)
        start += ((at - start) // cycle) * cycle
    offset = (at - start).total_seconds()
    duration = schedule.get("duration")
    if offset < 0 or (duration is not None and offset >= duration):
        return None
    current = None
    for period in sorted(schedule["charging_schedule_period"], key=lambda p: p["start_period"]):
        if period["start_period"] <= offset:
            current = period
    if current is None:
        return None
    limit = float(current["limit"])
    if schedule.get("charging_rate_unit") == "A":
        phases = current.get("number_phases") or DEFAULT_PHASES
        return limit * VOLTAGE * phases / 1000
    return limit / 1000


def limit_kw(
    profiles: Iterable[dict[str, Any]],
    at: datetime,
    transaction_id: int | None = None,
    transaction_start: datetime | None = None,
) -> float | None:
    """The limit the profiles set at `at` (None: no profile limits the power)."""
    ranked = sorted(
        (p for p in profiles if _valid(p, at, transaction_id)),
        key=lambda p: (PURPOSE_RANK.get(p.get("charging_profile_purpose"), 0), p["stack_level"]),
        reverse=True,
    )
    for profile in ranked:
        start = _schedule_start(profile, transaction_start)
        if start is None:
            continue
        limit = period_limit_kw(profile, at, start)
        if limit is not None:
            return limit
    return None
