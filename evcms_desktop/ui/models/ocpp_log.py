"""OCPP messages in and out, per charger, newest first, filterable by charger and action.

Messages arrive in bursts (200 chargers' meter values), so they are buffered and inserted
in one block a few times a second; the oldest drop out past LIMIT, also from a burst still
waiting to be shown.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTimer,
)
from PySide6.QtGui import QColor

from evcms_desktop.csms.events import CsmsEvent
from evcms_desktop.ui.formatting import fmt_clock
from evcms_desktop.ui.models.table import Column, RecordTableModel

Index = QModelIndex | QPersistentModelIndex
COL_CHARGER, COL_ACTION, COL_PAYLOAD = 1, 3, 4
DIRECTION_COLOURS = {"in": QColor("#0b4a8f"), "out": QColor("#13612e")}


@dataclass(frozen=True)
class LogLine:
    timestamp: datetime
    charge_point: str
    direction: str
    action: str
    payload: str


def log_line(event: CsmsEvent) -> LogLine:
    data = event.data
    direction = str(data.get("direction", ""))
    payload = data.get("payload")
    text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return LogLine(
        event.timestamp, event.charge_point or "", direction, str(data.get("action") or ""), text
    )


class OcppLogModel(RecordTableModel[LogLine]):
    LIMIT = 5000
    FLUSH_MS = 300

    def __init__(self, tz: ZoneInfo, parent: QObject | None = None) -> None:
        super().__init__(
            [
                Column("Time", lambda line: fmt_clock(line.timestamp, tz)),
                Column("Charger", lambda line: line.charge_point),
                Column(
                    "Direction",
                    lambda line: line.direction,
                    colour=lambda line: DIRECTION_COLOURS.get(line.direction),
                ),
                Column("Action", lambda line: line.action),
                Column("Payload", lambda line: line.payload),
            ],
            parent,
        )
        # Newest last (the table shows newest first); a burst keeps only what could show.
        self._pending: deque[LogLine] = deque(maxlen=self.LIMIT)
        self.chargers: set[str] = set()
        self.actions: set[str] = set()
        self._flush = QTimer(self, interval=self.FLUSH_MS, singleShot=True)
        self._flush.timeout.connect(self.flush)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.ToolTipRole and index.column() == COL_PAYLOAD:
            return self.record(index.row()).payload
        return super().data(index, role)

    def add(self, event: CsmsEvent) -> None:
        self._pending.append(log_line(event))
        if not self._flush.isActive():
            self._flush.start()

    def flush(self) -> None:
        if not self._pending:
            return
        fresh = list(reversed(self._pending))
        self._pending.clear()
        for line in fresh:
            self.chargers.add(line.charge_point)
            self.actions.add(line.action)
        self.beginInsertRows(QModelIndex(), 0, len(fresh) - 1)
        self._records[:0] = fresh
        self.endInsertRows()
        if len(self._records) > self.LIMIT:
            self.beginRemoveRows(QModelIndex(), self.LIMIT, len(self._records) - 1)
            del self._records[self.LIMIT :]
            self.endRemoveRows()


class OcppLogFilter(QSortFilterProxyModel):
    """Rows of one charger and/or one action ('' means any)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.charger = ""
        self.action = ""

    def set_filter(self, charger: str, action: str) -> None:
        self.beginFilterChange()
        self.charger, self.action = charger, action
        self.endFilterChange()

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        model = self.sourceModel()

        def cell(column: int) -> str:
            return model.data(model.index(source_row, column, source_parent)) or ""

        if self.charger and cell(COL_CHARGER) != self.charger:
            return False
        return not (self.action and cell(COL_ACTION) != self.action)
