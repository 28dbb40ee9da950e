"""Request -> plans -> confirmation, backed by the BookingService.

Nothing is written until a plan is chosen; a slot taken in between is explained and the
plans are worked out again.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QSizePolicy, QStackedWidget, QVBoxLayout, QWidget

from evcms_desktop.domain.plans import Plan, PlanOutcome
from evcms_desktop.domain.validation import BookingRequestError, FieldError, validate_request
from evcms_desktop.store.bookings import BookingService, SlotTakenError
from evcms_desktop.store.models import Booking
from evcms_desktop.store.stations import station_calendar
from evcms_desktop.ui.booking.confirmation import ConfirmationPage
from evcms_desktop.ui.booking.form import BookingForm
from evcms_desktop.ui.booking.plans import PlansPage

log = logging.getLogger(__name__)

# More than this is no car's battery (the largest hold about this much): a typo, or a van.
LARGEST_BATTERY_KWH = Decimal(120)


class BookingFlow(QWidget):
    booked = Signal(str)  # the new booking's code
    page_changed = Signal(str)  # "form", "plans" or "done"
    finished = Signal()

    def __init__(
        self,
        service: BookingService,
        *,
        connector_choice: bool = True,
        public: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.service = service
        self.site = service.site()
        self.tz = station_calendar(service.station).tz
        self.outcome: PlanOutcome | None = None
        self.booking: Booking | None = None

        self.form = BookingForm(self.site, self.tz, connector_choice=connector_choice)
        self.plans = PlansPage(self.site, self.tz, driver=public)
        self.confirmation = ConfirmationPage(self.tz, public=public)
        self.stack = QStackedWidget()
        for page in (self.form, self.plans, self.confirmation):
            self.stack.addWidget(page)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stack)

        self.form.submitted.connect(self.submit)
        self.plans.chosen.connect(self.choose)
        self.confirmation.done.connect(self.finished)
        self.restart()

    @property
    def page(self) -> str:
        return ("form", "plans", "done")[self.stack.currentIndex()]

    def _show(self, page: str) -> None:
        index = ("form", "plans", "done").index(page)
        for i in range(self.stack.count()):  # only the page shown sets the size
            policy = QSizePolicy.Policy.Preferred if i == index else QSizePolicy.Policy.Ignored
            self.stack.widget(i).setSizePolicy(policy, policy)
        self.stack.setCurrentIndex(index)
        self.stack.updateGeometry()  # the layout sizes it again (it keeps the width it has)
        self.page_changed.emit(page)

    def back(self) -> None:
        """From the plans back to the request, as typed."""
        self._show("form")

    def restart(self) -> None:
        """Back to an empty request (also what the kiosk's idle timeout does)."""
        self.outcome = None
        self.booking = None
        self._asked_energy: Decimal | None = None
        self.form.reset(self.service.clock())
        self._show("form")

    def submit(self) -> bool:
        """Plan the typed request; all its errors are shown at once beside their fields.

        An energy no car's battery holds is asked about once: a second Show plans with
        the same number plans it.
        """
        request = self.form.request()
        typed = self.form.number_errors() + self.form.driver_errors()
        if typed:
            fields = {e.field for e in typed}
            others = validate_request(self.site, request, self.service.clock())
            self.form.show_errors(typed + [e for e in others if e.field not in fields])
            return False
        energy = request.energy_kwh
        if energy is not None and energy > LARGEST_BATTERY_KWH and energy != self._asked_energy:
            self._asked_energy = energy
            question = FieldError(
                "energy",
                f"{energy} kWh is more than a car's battery holds (the largest take about"
                f" {LARGEST_BATTERY_KWH} kWh). Check the number, or press Show plans again"
                " to plan it anyway.",
            )
            self.form.show_errors([question])
            return False
        try:
            self.outcome = self.service.plan(request)
        except BookingRequestError as exc:
            self.form.show_errors(exc.errors)
            return False
        self.form.clear_errors()
        self.plans.show_outcome(self.outcome, now=self.service.clock())
        self._show("plans")
        return True

    def choose(self, plan: Plan) -> None:
        assert self.outcome is not None
        try:
            booking = self.service.confirm(self.outcome, plan, self.form.driver())
        except SlotTakenError as exc:
            log.info("Slot taken while booking: %s", exc)
            self.outcome = self.service.plan(self.outcome.request)
            self.plans.show_outcome(
                self.outcome,
                f"{exc} The plans below have been worked out again.",
                now=self.service.clock(),
            )
            return
        self.booking = booking
        connector = self.site.connector(plan.connector_id)
        self.confirmation.show_booking(
            booking, connector.label if connector else "", self.site.tariff.currency
        )
        self._show("done")
        self.booked.emit(booking.code)
