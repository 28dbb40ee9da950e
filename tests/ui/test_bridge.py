"""The event bridge between the central system's bus and the console's Qt signals."""

from __future__ import annotations

import logging

import shiboken6
from PySide6.QtCore import QObject

from evcms_desktop.csms.events import CsmsEvent, EventBus, EventKind
from evcms_desktop.ui.bridge import EventBridge


def test_a_bridge_deleted_with_its_window_no_longer_hears_the_bus(qapp, caplog) -> None:
    bus = EventBus()
    window = QObject()  # deleted without closing, as when its close was refused
    bridge = EventBridge(bus, window)
    heard: list[CsmsEvent] = []
    bridge.event.connect(heard.append)
    bus.publish(CsmsEvent(EventKind.CHARGER_CONNECTED, "CP-A connected", "CP-A"))
    assert len(heard) == 1
    shiboken6.delete(window)
    assert not shiboken6.isValid(bridge)
    with caplog.at_level(logging.ERROR):
        bus.publish(CsmsEvent(EventKind.CHARGER_DISCONNECTED, "CP-A went away", "CP-A"))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    bridge.detach()  # a later detach is harmless
    assert len(heard) == 1
