"""Today's bookings as blocks, one lane per connector, Peak On shaded and now marked."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from evcms_desktop.store.bookings import bookings_between
from evcms_desktop.store.models import Booking, BookingState, Station, utcnow
from evcms_desktop.store.stations import bookable_connectors, station_calendar
from evcms_desktop.ui.formatting import fmt_time, state_text
from evcms_desktop.ui.theme import BOOKING_COLOURS, NOW_LINE, PEAK_SHADE

LABEL_WIDTH = 96
HEADER = 22
LANE = 34


@dataclass(frozen=True)
class Block:
    code: str
    lane: int
    start: datetime
    end: datetime
    state: str


class BookingTimeline(QWidget):
    booking_clicked = Signal(str)

    def __init__(
        self,
        station: Station,
        clock: Callable[[], datetime] = utcnow,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.station = station
        self.clock = clock
        self.calendar = station_calendar(station)
        self.lanes: list[tuple[int, str]] = []
        self.blocks: list[Block] = []
        self.peaks: list[tuple[datetime, datetime]] = []
        self.day_start = self.day_end = clock()
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.refresh()

    def sizeHint(self) -> QSize:
        return QSize(800, HEADER + LANE * max(1, len(self.lanes)) + 8)

    def minimumSizeHint(self) -> QSize:
        return QSize(400, HEADER + LANE * max(1, len(self.lanes)) + 8)

    def refresh(self) -> None:
        tz = self.calendar.tz
        today = self.clock().astimezone(tz).date()
        self.day_start = datetime.combine(today, time(0), tz)
        self.day_end = datetime.combine(today + timedelta(days=1), time(0), tz)
        self.lanes = [(c.id, c.label) for c in bookable_connectors(self.station)]
        lane_of = {cid: i for i, (cid, _) in enumerate(self.lanes)}
        self.peaks = self.calendar.windows_utc(self.day_start, self.day_end)
        bookings: list[Booking] = bookings_between(self.station, self.day_start, self.day_end)
        self.blocks = [
            Block(b.code, lane_of[b.connector_id], b.start, b.end, b.state)
            for b in bookings
            if b.connector_id in lane_of and b.state != BookingState.CANCELLED.value
        ]
        self.updateGeometry()
        self.update()

    def _x(self, moment: datetime) -> float:
        span = (self.day_end - self.day_start).total_seconds()
        share = (moment - self.day_start).total_seconds() / span
        width = self.width() - LABEL_WIDTH - 8
        return LABEL_WIDTH + max(0.0, min(1.0, share)) * width

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        height = HEADER + LANE * max(1, len(self.lanes))
        painter.fillRect(self.rect(), QColor("#ffffff"))
        for a, b in self.peaks:
            painter.fillRect(
                QRectF(self._x(a), HEADER, self._x(b) - self._x(a), height - HEADER), PEAK_SHADE
            )
        small = QFont(self.font())
        small.setPointSizeF(max(7.0, self.font().pointSizeF() - 1))
        painter.setFont(small)
        painter.setPen(QPen(QColor("#dde3e8")))
        for hour in range(0, 25, 2):
            x = self._x(self.day_start + timedelta(hours=hour))
            painter.drawLine(QPointF(x, HEADER - 4), QPointF(x, height))
            if hour < 24:
                painter.setPen(QColor("#5b6b7a"))
                painter.drawText(QPointF(x + 3, HEADER - 8), f"{hour:02d}:00")
                painter.setPen(QPen(QColor("#dde3e8")))
        for i, (_, label) in enumerate(self.lanes):
            y = HEADER + i * LANE
            painter.setPen(QPen(QColor("#dde3e8")))
            painter.drawLine(QPointF(LABEL_WIDTH, y + LANE), QPointF(self.width() - 8, y + LANE))
            painter.setPen(QColor("#1b2733"))
            painter.drawText(
                QRectF(4, y, LABEL_WIDTH - 8, LANE),
                Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                label,
            )
        for rect, block in self.block_rects():
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(BOOKING_COLOURS.get(block.state, "#3d7dd8")))
            painter.drawRoundedRect(rect, 4, 4)
            text = painter.fontMetrics().elidedText(
                block.code, Qt.TextElideMode.ElideRight, int(rect.width()) - 8
            )
            if rect.width() > 40 and text != "…":
                painter.setPen(QColor("#ffffff"))
                painter.drawText(
                    rect.adjusted(4, 0, -4, 0),
                    Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                    text,
                )
        now = self.clock()
        if self.day_start <= now < self.day_end:
            x = self._x(now)
            painter.setPen(QPen(QColor(NOW_LINE), 2))
            painter.drawLine(QPointF(x, HEADER - 4), QPointF(x, height))
        painter.end()

    def block_rects(self) -> list[tuple[QRectF, Block]]:
        out = []
        for block in self.blocks:
            x1, x2 = self._x(block.start), self._x(block.end)
            out.append(
                (QRectF(x1, HEADER + block.lane * LANE + 5, max(4.0, x2 - x1), LANE - 10), block)
            )
        return out

    def block_at(self, point: QPointF) -> str | None:
        return next((b.code for rect, b in self.block_rects() if rect.contains(point)), None)

    def block_rect(self, code: str) -> QRectF | None:
        return next((rect for rect, b in self.block_rects() if b.code == code), None)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        code = self.block_at(event.position())
        block = next((b for b in self.blocks if b.code == code), None)
        tz = self.calendar.tz
        self.setToolTip(
            ""
            if block is None
            else f"{block.code}: {fmt_time(block.start, tz)}–{fmt_time(block.end, tz)},"
            f" {state_text(block.state)}"
        )
        self.setCursor(Qt.CursorShape.PointingHandCursor if code else Qt.CursorShape.ArrowCursor)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        code = self.block_at(event.position())
        if code is not None and event.button() == Qt.MouseButton.LeftButton:
            self.booking_clicked.emit(code)
