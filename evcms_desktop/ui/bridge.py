"""The central system's EventBus, as Qt signals.

Subscribers run in the asyncio loop's thread, which under qasync is the Qt thread, so the
signals are emitted directly. Views throttle their own repaints.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from evcms_desktop.csms.events import CsmsEvent, EventBus, EventKind


class EventBridge(QObject):
    event = Signal(object)  # every CsmsEvent
    notification = Signal(object)  # the ones a person is told about
    ocpp_message = Signal(object)
    meter_values = Signal(object)

    def __init__(self, bus: EventBus, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.bus = bus
        self._unsubscribe: Callable[[], None] | None = bus.subscribe(self._on_event)

    def _on_event(self, event: CsmsEvent) -> None:
        if event.kind is EventKind.OCPP_MESSAGE:
            self.ocpp_message.emit(event)
            return
        if event.kind is EventKind.METER_VALUES:
            self.meter_values.emit(event)
        self.event.emit(event)
        if event.is_notification:
            self.notification.emit(event)

    def detach(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
