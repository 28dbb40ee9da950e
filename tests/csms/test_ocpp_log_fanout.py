"""The OCPP log passed from a node to attached consoles stays within its bounds: every
notification under PostgreSQL's 8000 bytes, long frames cut and saying so, frames beyond
the waiting room counted and reported, a charger's password not passed on, and a hostile
notification ignored."""

from __future__ import annotations

import json

from evcms_desktop.csms.events import CsmsEvent, EventKind
from evcms_desktop.csms.ocpp_log import (
    FRAME_CHARS,
    PENDING_MAX,
    OcppLogFanOut,
    read_batch,
)
from tests.conftest import NOW


def frame(ident: str, action: str, payload: object, direction: str = "in") -> CsmsEvent:
    return CsmsEvent(
        EventKind.OCPP_MESSAGE,
        f"{direction} {action}",
        charge_point=ident,
        data={"direction": direction, "action": action, "payload": payload},
        timestamp=NOW,
    )


def test_a_flood_goes_out_in_bounded_batches_and_says_what_it_left_out():
    sent: list[str] = []
    fan_out = OcppLogFanOut("A", sent.append)
    huge = {"data": "x" * 50_000}
    for n in range(PENDING_MAX + 300):
        fan_out.add(frame(f"CP-{n % 7}", "DataTransfer", huge if n == 0 else {"n": n}))
    fan_out.add(CsmsEvent(EventKind.CHARGER_BOOTED, "booted", "CP-1"))  # not a frame
    for _ in range(50):
        fan_out.flush()
    assert all(len(text.encode()) < 8000 for text in sent)
    received = [event for text in sent for event in read_batch(text)]
    frames = [e for e in received if e.data["action"]]
    assert len(frames) == PENDING_MAX  # every frame kept is passed on, once, in order
    assert [e.data["payload"] for e in frames[1:3]] == ['{"n":1}', '{"n":2}']
    cut = frames[0].data["payload"]
    assert len(cut) < FRAME_CHARS + 40 and cut.endswith("(cut: 50011 characters)")
    notes = [e for e in received if not e.data["action"]]
    assert [e.data["payload"] for e in notes] == [
        "node A: 300 frames not passed on (over the shared log's bound)"
    ]
    assert all(e.origin == "A" for e in received)
    sent.clear()
    fan_out.flush()
    assert sent == []  # nothing waiting: no notification


def test_a_chargers_password_set_by_change_configuration_is_not_passed_on():
    sent: list[str] = []
    fan_out = OcppLogFanOut("A", sent.append)
    secret = "s3cret-authorization-key"
    fan_out.add(frame("CP-1", "ChangeConfiguration", {"key": "AuthorizationKey", "value": secret}))
    fan_out.flush()
    assert secret not in sent[0]
    assert read_batch(sent[0])[0].data["payload"] == '{"key":"AuthorizationKey","value":"***"}'


def test_a_hostile_notification_shows_nothing():
    good = [NOW.isoformat(), "CP-1", "in", "Heartbeat", "{}"]
    for payload in (
        "not json",
        "[]",
        json.dumps({"origin": "A", "frames": "x", "dropped": 0}),
        json.dumps({"origin": "A", "frames": [good], "dropped": -1}),
        json.dumps({"origin": "A", "frames": [[1, 2, 3, 4, 5]], "dropped": 0}),
        json.dumps({"origin": "A", "frames": [["2026-12-01T06:00:00", *good[1:]]], "dropped": 0}),
    ):
        assert read_batch(payload) == []
    many = json.dumps({"origin": "A", "frames": [good] * 5000, "dropped": 0})
    assert len(read_batch(many)) == 200
