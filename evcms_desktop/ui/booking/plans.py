"""The plans of one request side by side: times, power, energy, price breakdown and saving.

For drivers (the kiosk) a card says what a driver decides on, in large type: when to
arrive and what that saves, the time, the energy and the price; no tariff terms.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from evcms_desktop.domain.plans import Plan, PlanOutcome
from evcms_desktop.domain.site import Site
from evcms_desktop.domain.tariff import format_money
from evcms_desktop.ui.formatting import fmt_day, fmt_duration, fmt_kw, fmt_kwh, fmt_span


def _label(text: str, name: str = "", *, wrap: bool = False) -> QLabel:
    label = QLabel(text)
    if name:
        label.setObjectName(name)
    label.setWordWrap(wrap)
    return label


def saving_text(saving: Decimal, currency: str) -> str:
    if saving > 0:
        return f"Saves {format_money(saving, currency)} on the time asked for"
    if saving < 0:
        return f"{format_money(-saving, currency)} more than the time asked for"
    return "Same price as the time asked for"


def driver_saving_text(saving: Decimal, currency: str) -> str:
    if saving > 0:
        return f"save {format_money(saving, currency)}"
    if saving < 0:
        return f"{format_money(-saving, currency)} more"
    return "same price"


class DriverPlanCard(QFrame):
    """A plan as a driver weighs it: "Arrive 15:00, save £1.50", time, energy, price."""

    chosen = Signal(object)

    def __init__(
        self,
        plan: Plan,
        site: Site,
        tz: ZoneInfo,
        arrival: datetime,
        *,
        cheapest: bool,
        this_year: int | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.plan = plan
        self.setObjectName("planCard")
        self.setProperty("cheapest", cheapest)
        self.setMinimumWidth(220)
        currency = site.tariff.currency
        start, end = plan.start.astimezone(tz), plan.end.astimezone(tz)
        when = "At the time you asked" if plan.start == arrival else f"Arrive {start:%H:%M}"
        if start.date() != arrival.astimezone(tz).date():
            when += f" on {fmt_day(start, this_year)}"
        self.title = _label(f"{when}, {driver_saving_text(plan.saving, currency)}", "planTitle")
        self.title.setWordWrap(True)
        times = _label(f"{start:%H:%M}–{end:%H:%M}", "planTimes")
        energy = _label(f"{fmt_kwh(plan.energy_kwh)} in {fmt_duration(plan.duration)}")
        self.total = _label(format_money(plan.price.total, currency), "planTotal")
        self.choose_button = QPushButton("Choose")
        self.choose_button.setDefault(cheapest)
        self.choose_button.clicked.connect(lambda: self.chosen.emit(self.plan))
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        if cheapest:
            top.addWidget(_label("Cheapest", "badge"), 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(times)
        layout.addWidget(energy)
        layout.addStretch(1)
        layout.addWidget(self.total)
        layout.addWidget(self.choose_button)


class PlanCard(QFrame):
    chosen = Signal(object)

    def __init__(
        self,
        plan: Plan,
        site: Site,
        tz: ZoneInfo,
        *,
        cheapest: bool,
        this_year: int | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.plan = plan
        self.setObjectName("planCard")
        self.setProperty("cheapest", cheapest)
        self.setMinimumWidth(220)
        currency = site.tariff.currency
        money = lambda amount: format_money(amount, currency)  # noqa: E731
        connector = site.connector(plan.connector_id)

        peak_row = QHBoxLayout()
        peak_row.addWidget(
            _label(
                "Peak On" if plan.peak_on else "Peak Off", "peakOn" if plan.peak_on else "peakOff"
            )
        )
        peak_row.addStretch(1)
        if cheapest:
            peak_row.addWidget(_label("Cheapest", "badge"))
        start, end = plan.start.astimezone(tz), plan.end.astimezone(tz)
        day = _label(fmt_day(start, this_year), "counterTitle")
        times = _label(f"{start:%H:%M}–{end:%H:%M}", "planTimes")
        place = connector.label if connector else str(plan.connector_id)
        where = _label(f"{fmt_duration(plan.duration)} on {place}")
        amounts = _label(f"{fmt_kw(plan.power_kw)} · {fmt_kwh(plan.energy_kwh)}")
        if start.date() != end.date():
            day.setText(f"{fmt_day(start, this_year)}, ends {fmt_day(end, this_year)}")

        price = plan.price
        details = QGridLayout()
        details.setHorizontalSpacing(12)
        for row, (name, value) in enumerate(
            (
                ("Energy", money(price.energy)),
                ("Time of use", money(price.time_of_use)),
                ("Service", money(price.service)),
            )
        ):
            details.addWidget(_label(name, "counterTitle"), row, 0)
            value_label = _label(value)
            value_label.setAlignment(Qt.AlignmentFlag.AlignRight)
            details.addWidget(value_label, row, 1)
        acm = _label(
            f"ACM {price.acm.normalize():f} × peak demand charge"
            f" {money(site.tariff.peak_demand_charge)}",
            "counterTitle",
            wrap=True,
        )

        self.total = _label(money(price.total), "planTotal")
        self.saving = _label(saving_text(plan.saving, currency), wrap=True)
        self.choose_button = QPushButton(f"Choose Plan {plan.kind.value}")
        self.choose_button.setDefault(cheapest)
        self.choose_button.clicked.connect(lambda: self.chosen.emit(self.plan))

        layout = QVBoxLayout(self)
        layout.addWidget(_label(f"Plan {plan.kind.value} · {plan.kind.title}", "planTitle"))
        layout.addLayout(peak_row)
        layout.addWidget(day)
        layout.addWidget(times)
        layout.addWidget(where)
        layout.addWidget(amounts)
        layout.addSpacing(6)
        layout.addLayout(details)
        layout.addWidget(acm)
        layout.addStretch(1)
        layout.addWidget(self.total)
        layout.addWidget(self.saving)
        layout.addWidget(self.choose_button)


class PlansPage(QWidget):
    chosen = Signal(object)

    def __init__(
        self, site: Site, tz: ZoneInfo, driver: bool = False, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.site, self.tz, self.driver = site, tz, driver
        self.cards: list[PlanCard | DriverPlanCard] = []
        self.asked = _label("", wrap=True)
        self.problem = _label("", "fieldError", wrap=True)
        self.problem.hide()
        self.row = QHBoxLayout()
        self.unavailable = _label("", "kioskHint" if driver else "counterTitle", wrap=True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.asked)
        layout.addWidget(self.problem)
        layout.addLayout(self.row)
        layout.addWidget(self.unavailable)
        layout.addStretch(1)

    def show_outcome(
        self, outcome: PlanOutcome, problem: str = "", now: datetime | None = None
    ) -> None:
        """`now`: a day in another year than its year is shown with the year."""
        currency = self.site.tariff.currency
        request = outcome.request
        peak = "Peak On" if outcome.requested_peak_on else "Peak Off"
        busy = ", when every connector is already booked" if outcome.requested_overlapped else ""
        year = None if now is None else now.astimezone(self.tz).year
        asked = fmt_span(request.arrival, request.arrival + request.duration, self.tz, year)
        self.asked.setText(
            f"You asked for {asked}"
            f" ({peak}{busy}): {format_money(outcome.baseline.total, currency)} at that time."
        )
        self.problem.setText(problem)
        self.problem.setVisible(bool(problem))
        for card in self.cards:
            self.row.removeWidget(card)
            card.deleteLater()
        # "Cheapest" only where it saves something against another plan on show.
        prices = {plan.price.total for plan in outcome.plans}
        cheapest = outcome.cheapest if len(prices) > 1 else None
        self.cards = [
            DriverPlanCard(
                plan, self.site, self.tz, request.arrival, cheapest=plan is cheapest, this_year=year
            )
            if self.driver
            else PlanCard(plan, self.site, self.tz, cheapest=plan is cheapest, this_year=year)
            for plan in outcome.plans
        ]
        for card in self.cards:
            card.chosen.connect(self.chosen)
            self.row.addWidget(card)
        if not self.cards:
            self.problem.setText(problem or "No plan can be offered for this request.")
            self.problem.show()
        shown = {
            kind: why
            for kind, why in outcome.unavailable.items()
            if not why.startswith(("The same as", "Plan "))  # not offered because not needed
        }
        if self.driver:  # the reasons, once each, in the drivers' own words and size
            self.unavailable.setText(" ".join(dict.fromkeys(shown.values())))
        else:
            reasons = [f"Plan {kind.value}: {why}" for kind, why in shown.items()]
            self.unavailable.setText("Not offered: " + "  ".join(reasons) if reasons else "")
