"""The frontier's table, chart, hint and "Use as the site limit": a point that leaves energy
short shows no saving and is confirmed before it becomes the limit; one below the least
peak that meets every booking is marked, with the least any schedule there leaves short."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from PySide6.QtWidgets import QMessageBox

from evcms_desktop.schedule import ScheduleBooking, ScheduleProblem
from evcms_desktop.schedule.milp import MilpOptions
from evcms_desktop.schedule.optimal import FrontierPoint, plan_site
from evcms_desktop.ui.charts.frontier import frontier_chart
from evcms_desktop.ui.frontier_view import MUST_BE_SHORT, FrontierView

DAY = datetime(2027, 3, 2, tzinfo=UTC)


def _points() -> list[FrontierPoint]:
    # Two cars 00:00-01:00, 17.6 kWh each: 44 kW meets both, 22 kW leaves one short.
    problem = ScheduleProblem(
        bookings=tuple(
            ScheduleBooking(
                id=i, earliest=DAY, latest=DAY + timedelta(hours=1), energy_kwh=Decimal("17.6")
            )
            for i in (1, 2)
        ),
        connector_ids=(1, 2),
    )
    options = MilpOptions(time_budget_s=5)
    met = plan_site(problem, options)
    short = plan_site(replace(problem, site_limit_kw=Decimal(22)), options)
    assert met.feasible and short.unmet
    return [FrontierPoint(None, met), FrontierPoint(22.0, short)]


def test_a_short_point_shows_no_saving_and_is_confirmed_before_use(qtbot) -> None:
    view = FrontierView()
    qtbot.addWidget(view)
    points = _points()
    view.show_points(points)
    label, cost, short, least, bound = (view.table.item(1, c).text() for c in (0, 2, 3, 4, 5))
    # Under 22 kW one car's 17.6 kWh cannot be had in its hour, by any schedule.
    assert label == f"peak 22 kW: at least 17.6 kWh short, this schedule {short} kWh short"
    assert "-£" not in label and bound == "—" and float(short) >= float(least) == 17.6
    assert float(cost) < float(points[0].cost)  # cheaper only because it delivers less
    emitted: list[tuple[object, str]] = []
    view.limit_chosen.connect(lambda kw, text: emitted.append((kw, text)))

    view.table.selectRow(1)
    assert "kWh short" in view.hint.text() and "not a saving" in view.hint.text()
    assert "No schedule under 22 kW meets every booking" in view.hint.text()
    view.use.click()
    assert view.confirm_box is not None and view.confirm_box.isVisible() and not emitted
    assert "at least 17.6 kWh must be" in view.confirm_box.text()
    view.confirm_box.button(QMessageBox.StandardButton.Cancel).click()
    assert not emitted and view.confirm_box is None
    view.use.click()
    assert view.confirm_box is not None
    view.confirm_box.button(QMessageBox.StandardButton.Yes).click()
    assert emitted == [(Decimal("22"), label)]


def test_a_point_that_meets_every_booking_is_used_at_once(qtbot) -> None:
    view = FrontierView()
    qtbot.addWidget(view)
    points = _points()
    view.show_points(points)
    emitted: list[tuple[object, str]] = []
    view.limit_chosen.connect(lambda kw, text: emitted.append((kw, text)))
    view.table.selectRow(0)
    assert view.hint.text() == view.base_hint
    view.use.click()
    assert view.confirm_box is None
    assert emitted == [
        (Decimal(str(points[0].peak_kw)).quantize(Decimal("0.1")), "peak 44 kW for +£0.00")
    ]


def test_points_below_the_least_peak_that_meets_everyone_are_marked(qtbot) -> None:
    view = FrontierView()
    qtbot.addWidget(view)
    points = _points()
    view.show_points(points[:1])
    assert view.note.isHidden()
    view.show_points(points)
    assert not view.note.isHidden() and "Tinted rows" in view.note.text()
    met, short = (view.table.item(r, 0) for r in (0, 1))
    assert met.background().color() != MUST_BE_SHORT and not met.toolTip()
    assert short.background().color() == MUST_BE_SHORT
    assert short.toolTip().startswith("No schedule under 22 kW meets every booking")


def test_the_chart_draws_short_points_beside_their_bound_below_the_cost_plot(qtbot) -> None:
    points = _points()
    chart = frontier_chart(points)
    qtbot.addWidget(chart)
    below = chart.ci.getItem(1, 0)
    schedule, bound = below.listDataItems()
    assert list(schedule.getData()[1]) == [points[1].unmet_kwh]
    assert list(bound.getData()[1]) == pytest.approx([17.6])
    assert list(bound.getData()[0]) == [points[1].peak_kw]
    assert chart.ci.getItem(0, 0).getViewBox().linkedView(0) is below.getViewBox()
    assert frontier_chart(points[:1]).ci.getItem(1, 0) is None  # nothing short: no second plot
