"""tools/relaxation.py, which docs/evaluation.md quotes: what the relaxation proves."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.schedule.test_milp import booking, problem
from tools.relaxation import describe, relaxation_of


def test_the_relaxation_figures_of_two_cars_that_share_one_hour() -> None:
    # 00:00-01:00 (Peak Off), 17.6 kWh each: only 44 kW meets both, for 2 * (8.80 + 0.20).
    p = problem(booking(1, 0, 1, "17.6"), booking(2, 0, 1, "17.6"))
    r = relaxation_of(p, Decimal("18.00"), connectors=2)
    assert r.least_cost == Decimal("18.00")
    assert r.least_peak_kw == pytest.approx(44)
    assert r.peak_at_greedy_cost_kw == pytest.approx(44)
    assert r.at_kw[100.0].cost == Decimal("18.00")
    assert r.at_kw[80.0].unmet_kwh == pytest.approx(0)
    lines = describe(r)
    assert "  least peak meeting every booking, at any cost: 44.0 kW" in lines
    assert "  least cost under 100 kW: 18.00 (+£0.00)" in lines
    assert "  least energy short under 60 kW: 0.0 kWh" in lines
    assert r.at_kw.keys() == {60.0, 80.0, 100.0}
