"""The Sessions tab: finished and running transactions, exportable to CSV."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDateEdit,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from evcms_desktop.store.models import Station, utcnow
from evcms_desktop.store.stations import local_day_bounds, station_calendar
from evcms_desktop.ui.formatting import bound_dates, local_qdate
from evcms_desktop.ui.models.sessions import SessionsModel
from evcms_desktop.ui.sites import SiteChoice, SiteLookup
from evcms_desktop.ui.views.tables import sortable_table

log = logging.getLogger(__name__)


class SessionsView(QWidget):
    def __init__(
        self,
        station: Station,
        clock: Callable[[], datetime] = utcnow,
        parent: QWidget | None = None,
        sites: SiteLookup | None = None,
    ) -> None:
        super().__init__(parent)
        self.station = station
        self.model = SessionsModel(station, clock, self, sites)
        self.site_choice = SiteChoice(self.model.sites)
        self.site_choice.chosen.connect(self.refresh)
        day = local_qdate(clock(), station_calendar(station).tz)
        self.first = QDateEdit(day.addDays(-6), calendarPopup=True)
        self.last = QDateEdit(day, calendarPopup=True)
        bound_dates(self.first, self.last)
        for edit in (self.first, self.last):
            edit.setDisplayFormat("ddd d MMM yyyy")
            edit.dateChanged.connect(self.refresh)
        self.table = sortable_table(
            self.model,
            self,
            sort_column=self.model.column("Start"),
            order=Qt.SortOrder.DescendingOrder,
        )
        self.export_button = QPushButton("Export CSV…")
        self.export_button.clicked.connect(self.ask_export)
        self.message = QLabel()
        top = QHBoxLayout()
        top.addWidget(self.site_choice)
        top.addWidget(QLabel("From"))
        top.addWidget(self.first)
        top.addWidget(QLabel("to"))
        top.addWidget(self.last)
        top.addStretch(1)
        top.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table)
        layout.addWidget(self.message)
        self.refresh()

    def refresh(self) -> None:
        """The chosen sites' sessions over the chosen days (in this console's own site's
        time zone)."""
        self.model.site_ids = self.site_choice.site_ids()
        start, end = local_day_bounds(
            self.station, self.first.date().toPython(), self.last.date().toPython()
        )
        self.model.load(start, end)

    def ask_export(self) -> None:
        dialog = QFileDialog(self, "Export sessions", "sessions.csv", "CSV files (*.csv)")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix("csv")
        dialog.fileSelected.connect(lambda name: self.export(Path(name)))
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()

    def export(self, path: Path) -> None:
        try:
            count = self.model.export_csv(path)
        except OSError as exc:
            self.message.setText(f"Could not write {path}: {exc.strerror}")
            return
        log.info("Exported %d sessions to %s", count, path)
        self.message.setText(f"Exported {count} session{'s' * (count != 1)} to {path}.")
