"""The console's OCPP log holds at most LIMIT lines, also when a burst arrives between two
repaints (another node's batches, a storm of meter values), newest first."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from evcms_desktop.csms.events import CsmsEvent, EventKind
from evcms_desktop.ui.models.ocpp_log import OcppLogModel


def test_a_burst_keeps_the_newest_lines_only(qtbot):
    model = OcppLogModel(ZoneInfo("Europe/London"))
    burst = model.LIMIT * 3
    for n in range(burst):
        data = {"direction": "in", "action": "Heartbeat", "payload": {"n": n}}
        model.add(CsmsEvent(EventKind.OCPP_MESSAGE, "in Heartbeat", "CP-1", data=data))
    assert len(model._pending) == model.LIMIT
    model.flush()
    assert model.rowCount() == model.LIMIT
    assert model.record(0).payload == f'{{"n":{burst - 1}}}'
    assert model.record(model.LIMIT - 1).payload == f'{{"n":{burst - model.LIMIT}}}'
