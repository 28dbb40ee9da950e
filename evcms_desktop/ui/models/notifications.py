"""The events a person is told about, newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

from evcms_desktop.csms.events import NOTIFICATION_KINDS, CsmsEvent, EventKind
from evcms_desktop.store.models import Event, Station, utcnow
from evcms_desktop.store.notices import NOTICE_KINDS, recent_events
from evcms_desktop.ui.formatting import fmt_clock
from evcms_desktop.ui.models import ROW_ROLE

Index = QModelIndex | QPersistentModelIndex

KIND_COLOURS = {
    EventKind.CHARGER_DISCONNECTED.value: "#9c1c12",
    EventKind.BOOKING_NO_SHOW.value: "#9c1c12",
    EventKind.CHARGER_PENDING.value: "#8a1a5c",
    EventKind.FULLY_CHARGED.value: "#13612e",
    EventKind.SESSION_STOPPED.value: "#0b4a8f",
}


@dataclass(frozen=True)
class Notice:
    timestamp: datetime
    kind: str
    message: str
    charge_point: str | None = None


class NotificationsModel(QAbstractListModel):
    LIMIT = 1000

    def __init__(
        self, tz: ZoneInfo, parent: QObject | None = None, station: Station | None = None
    ) -> None:
        super().__init__(parent)
        self.tz = tz
        self.station = station  # kept events of this site only (None: of every site)
        self._items: list[Notice] = []
        self._last_notice_id = 0  # newest booking/action notice shown

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._items)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        item = self._items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{fmt_clock(item.timestamp, self.tz)}   {item.message}"
        if role == Qt.ItemDataRole.ForegroundRole and item.kind in KIND_COLOURS:
            return QColor(KIND_COLOURS[item.kind])
        if role == ROW_ROLE:
            return item
        return None

    def notices(self) -> list[Notice]:
        return list(self._items)

    def load_history(self, limit: int = 200) -> None:
        """The kept charger events and notices, as after a restart."""
        kinds = {k.value for k in NOTIFICATION_KINDS} | NOTICE_KINDS
        rows = recent_events(kinds, limit, station=self.station)
        self.beginResetModel()
        self._items = [self._notice(e) for e in rows]
        self.endResetModel()
        self._last_notice_id = max((e.id for e in rows if e.kind in NOTICE_KINDS), default=0)

    def pull_notices(self) -> list[Notice]:
        """Add the notices kept since the last look (by this console or another process)."""
        rows = recent_events(
            NOTICE_KINDS, self.LIMIT, after_id=self._last_notice_id, station=self.station
        )
        if rows:
            self._last_notice_id = rows[0].id
        return [self.add(self._notice(e)) for e in reversed(rows)]

    @staticmethod
    def _notice(event: Event) -> Notice:
        return Notice(event.timestamp, event.kind, event.message, event.charge_point)

    def add_event(self, event: CsmsEvent) -> Notice:
        return self.add(
            Notice(event.timestamp, event.kind.value, event.message, event.charge_point)
        )

    def add_message(self, message: str, kind: str = "console") -> Notice:
        return self.add(Notice(utcnow(), kind, message))

    def add(self, notice: Notice) -> Notice:
        self.beginInsertRows(QModelIndex(), 0, 0)
        self._items.insert(0, notice)
        self.endInsertRows()
        if len(self._items) > self.LIMIT:
            self.beginRemoveRows(QModelIndex(), self.LIMIT, len(self._items) - 1)
            del self._items[self.LIMIT :]
            self.endRemoveRows()
        return notice
