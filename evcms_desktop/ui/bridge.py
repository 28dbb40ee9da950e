"""The central system's EventBus, as Qt signals.

Subscribers run in the asyncio loop's thread, which under qasync is the Qt thread, so the
signals are emitted directly. Views throttle their own repaints.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from PySide6.QtCore import QObject, Signal

from evcms_desktop.csms.events import CsmsEvent, EventBus, EventKind
from evcms_desktop.store.stations import charge_point_station


class EventBridge(QObject):
    event = Signal(object)  # every CsmsEvent
    notification = Signal(object)  # the ones a person is told about
    ocpp_message = Signal(object)
    meter_values = Signal(object)

    def __init__(
        self,
        bus: EventBus,
        parent: QObject | None = None,
        accept: Callable[[CsmsEvent], bool] | None = None,
    ) -> None:
        super().__init__(parent)
        self.bus = bus
        self.accept = accept
        self._unsubscribe: Callable[[], None] | None = bus.subscribe(self._on_event)
        # A bridge deleted without detach() (its window deleted while its close was
        # refused) must not stay subscribed: the bus would call into a deleted object.
        self.destroyed.connect(self._unsubscribe)

    def _on_event(self, event: CsmsEvent) -> None:
        if self.accept is not None and not self.accept(event):
            return
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


class SiteFilter:
    """Lets through the events of some sites' chargers (a console's), and those of no
    charger.

    A charger's site is looked up once and again whenever it connects or boots (it may
    have been moved to another site meanwhile). A charger the store does not know (one
    refused at the door) belongs to no site and is shown everywhere.
    """

    _RELOOK = frozenset(
        {EventKind.CHARGER_CONNECTED, EventKind.CHARGER_BOOTED, EventKind.CHARGER_PENDING}
    )

    def __init__(self, station_ids: int | Collection[int]) -> None:
        self.station_ids = {station_ids} if isinstance(station_ids, int) else set(station_ids)
        self._sites: dict[str, int | None] = {}

    def __call__(self, event: CsmsEvent) -> bool:
        ident = event.charge_point
        if ident is None:
            return True
        if ident not in self._sites or event.kind in self._RELOOK:
            self._sites[ident] = charge_point_station(ident)
        site = self._sites[ident]
        return site is None or site in self.station_ids
