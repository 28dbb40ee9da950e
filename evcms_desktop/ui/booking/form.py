"""The booking request form: what the driver asks for, with each field's error beside it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from PySide6.QtCore import QDate, QTime, Signal
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QTimeEdit,
    QVBoxLayout,
    QWidget,
)

from evcms_desktop.domain.site import Site
from evcms_desktop.domain.validation import (
    DATE_RULE,
    FieldError,
    PlanRequest,
    driver_errors,
    parse_amount,
)
from evcms_desktop.store.bookings import DriverDetails
from evcms_desktop.ui.formatting import bound_dates

FIELDS = (
    "arrival", "earliest", "duration", "energy", "power", "connector", "name", "contact",
    "general",
)  # fmt: skip


def _error_label() -> QLabel:
    label = QLabel()
    label.setObjectName("fieldError")
    label.setWordWrap(True)
    label.hide()
    return label


def next_quarter(now: datetime, lead: timedelta = timedelta(minutes=15)) -> datetime:
    """The first quarter hour at least `lead` from now."""
    moment = now + lead
    extra = (15 - moment.minute % 15) % 15
    return (moment + timedelta(minutes=extra)).replace(second=0, microsecond=0)


class SlotTimeEdit(QTimeEdit):
    """A time of day that the arrows, the wheel and the keys step by the booking slot
    (whatever section the cursor is in), within the day: bookings start on slots."""

    def __init__(self, step: timedelta, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.step_seconds = max(60, int(step.total_seconds()))
        self.setDisplayFormat("HH:mm")

    def stepBy(self, steps: int) -> None:
        seconds = QTime(0, 0).secsTo(self.time())
        on_slot = seconds - seconds % self.step_seconds
        if steps < 0 and on_slot < seconds:
            steps += 1  # down from between two slots is to the slot below
        target = on_slot + steps * self.step_seconds
        last = (24 * 3600 - 1) // self.step_seconds * self.step_seconds
        self.setTime(QTime(0, 0).addSecs(min(max(target, 0), last)))

    def stepEnabled(self) -> QAbstractSpinBox.StepEnabledFlag:
        seconds = QTime(0, 0).secsTo(self.time())
        flags = QAbstractSpinBox.StepEnabledFlag.StepNone
        if seconds > 0:
            flags |= QAbstractSpinBox.StepEnabledFlag.StepDownEnabled
        if seconds < (24 * 3600 - 1) // self.step_seconds * self.step_seconds:
            flags |= QAbstractSpinBox.StepEnabledFlag.StepUpEnabled
        return flags


class BookingForm(QWidget):
    submitted = Signal()

    def __init__(
        self,
        site: Site,
        tz: ZoneInfo,
        *,
        connector_choice: bool = True,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.tz = tz
        self.errors: dict[str, QLabel] = {name: _error_label() for name in FIELDS}
        self._number_said: dict[str, str] = {}  # what typing an amount last said of it

        self.date = QDateEdit(calendarPopup=True)
        self.date.setDisplayFormat("ddd d MMM yyyy")
        bound_dates(self.date)
        self.date_hint = QLabel(f"{DATE_RULE}.")
        self.date_hint.setObjectName("counterTitle")
        self.time = SlotTimeEdit(site.step)
        self.earlier = QCheckBox("I can come earlier, from")
        self.earlier.setToolTip(
            "An Eco plan (Peak Off) never starts before your arrival unless you can come earlier"
        )
        self.earliest = SlotTimeEdit(site.step)
        self.earliest.setEnabled(False)
        self.earlier.toggled.connect(self.earliest.setEnabled)
        self.duration = QSpinBox(minimum=15, maximum=24 * 60, singleStep=15, value=60)
        self.duration.setSuffix(" min")
        self.duration.setCorrectionMode(QAbstractSpinBox.CorrectionMode.CorrectToNearestValue)
        self.duration_hint = QLabel("From 15 min to 24 h, in steps of 15 min.")
        self.duration_hint.setObjectName("counterTitle")
        self.energy = QLineEdit(placeholderText="e.g. 20")
        self.power = QLineEdit(placeholderText="optional")
        self.connector = QComboBox()
        self.connector.addItem("Any free connector", None)
        for c in site.connectors:
            self.connector.addItem(f"{c.label} ({c.max_power_kw.normalize():f} kW)", c.id)
        self.name = QLineEdit(placeholderText="optional")
        self.contact = QLineEdit(placeholderText="phone or e-mail, optional")
        for edit in (self.energy, self.power):
            edit.textChanged.connect(self._check_numbers)
            edit.returnPressed.connect(self.submitted)

        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
        when = QHBoxLayout()
        when.addWidget(self.date, 3)
        when.addWidget(self.time, 2)
        form.addRow("Arrival", when)
        form.addRow("", self.date_hint)
        form.addRow("", self.errors["arrival"])
        earlier = QHBoxLayout()
        earlier.addWidget(self.earlier)
        earlier.addWidget(self.earliest, 1)
        form.addRow("", earlier)
        form.addRow("", self.errors["earliest"])
        form.addRow("Duration", self.duration)
        form.addRow("", self.duration_hint)
        form.addRow("", self.errors["duration"])
        form.addRow("Energy (kWh)", self.energy)
        form.addRow("", self.errors["energy"])
        form.addRow("Charging power (kW)", self.power)
        form.addRow("", self.errors["power"])
        if connector_choice:
            form.addRow("Connector", self.connector)
            form.addRow("", self.errors["connector"])
        form.addRow("Driver name", self.name)
        form.addRow("", self.errors["name"])
        form.addRow("Contact", self.contact)
        form.addRow("", self.errors["contact"])
        hint = QLabel("Give the energy you need, a charging power, or both.")
        hint.setObjectName("counterTitle")
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(hint)
        layout.addWidget(self.errors["general"])
        layout.addStretch(1)

    def reset(self, now: datetime) -> None:
        start = next_quarter(now).astimezone(self.tz)
        self.date.setDate(QDate(start.year, start.month, start.day))
        self.time.setTime(QTime(start.hour, start.minute))
        self.earlier.setChecked(False)
        self.earliest.setTime(QTime(start.hour, start.minute))
        self.duration.setValue(60)
        for edit in (self.energy, self.power, self.name, self.contact):
            edit.clear()
        self.connector.setCurrentIndex(0)
        self.clear_errors()

    def clear_errors(self) -> None:
        for label in self.errors.values():
            label.clear()
            label.hide()

    def show_errors(self, errors: list[FieldError]) -> None:
        self.clear_errors()
        grouped: dict[str, list[str]] = {}
        for error in errors:
            name = error.field if error.field in self.errors else "general"
            if name == "connector" and not self.connector.isVisibleTo(self):
                name = "general"
            grouped.setdefault(name, []).append(error.message)
        for name, messages in grouped.items():
            self.errors[name].setText("\n".join(messages))
            self.errors[name].show()

    def _check_numbers(self) -> None:
        for name, edit in (("energy", self.energy), ("power", self.power)):
            label = self.errors[name]
            try:
                parse_amount(edit.text())
            except ValueError as exc:
                self._number_said[name] = str(exc)
                label.setText(str(exc))
                label.show()
            else:
                if label.text() == self._number_said.pop(name, None):
                    label.clear()
                    label.hide()

    def number_errors(self) -> list[FieldError]:
        """The amounts that cannot be read as numbers."""
        errors = []
        for name, edit in (("energy", self.energy), ("power", self.power)):
            try:
                parse_amount(edit.text())
            except ValueError as exc:
                errors.append(FieldError(name, str(exc)))
        return errors

    def request(self) -> PlanRequest:
        """The request as typed; an amount that cannot be read counts as not given."""
        amounts: dict[str, Decimal | None] = {}
        for name, edit in (("energy", self.energy), ("power", self.power)):
            try:
                amounts[name] = parse_amount(edit.text())
            except ValueError:
                amounts[name] = None
        day = self.date.date().toPython()
        at = self.time.time().toPython().replace(second=0, microsecond=0)
        earliest = None
        if self.earlier.isChecked():
            # On the arrival's day, or the evening before when later than the arrival.
            from_time = self.earliest.time().toPython().replace(second=0, microsecond=0)
            on = day - timedelta(days=1) if from_time > at else day
            earliest = datetime.combine(on, from_time, self.tz).astimezone(UTC)
        return PlanRequest(
            arrival=datetime.combine(day, at, self.tz).astimezone(UTC),
            earliest=earliest,
            duration=timedelta(minutes=self.duration.value()),
            energy_kwh=amounts["energy"],
            power_kw=amounts["power"],
            connector_id=self.connector.currentData(),
        )

    def driver_errors(self) -> list[FieldError]:
        return driver_errors(self.name.text().strip() or None, self.contact.text().strip() or None)

    def driver(self) -> DriverDetails:
        return DriverDetails(self.name.text().strip() or None, self.contact.text().strip() or None)
