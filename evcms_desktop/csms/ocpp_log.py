"""The OCPP log of a node's chargers, passed to attached consoles through PostgreSQL NOTIFY,
within fixed bounds.

A node may hear thousands of frames a second; a NOTIFY payload holds at most 8000 bytes,
and each one is a round trip to the database. So a node packs the frames it hears into one
notification every `FLUSH_SECONDS` (at most `BATCH_BYTES` each, hence at most
`BATCH_BYTES / FLUSH_SECONDS` bytes a second), cuts a frame's text past `FRAME_CHARS`
(saying so in the frame), keeps at most `PENDING_MAX` frames waiting, and counts the ones
it had no room for; the next notification says how many. An attached console checks every
notification before its frames reach its log (`read_batch`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from evcms_desktop.csms.events import CsmsEvent, EventKind

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.25  # one notification at most this often
BATCH_BYTES = 7000  # PostgreSQL's limit for a payload is 8000
FRAME_CHARS = 1000  # a frame's text beyond this is cut
PENDING_MAX = 500  # frames waiting for the next notification; more are counted, not kept
MAX_FRAMES = 200  # frames a console takes from one notification
SECRET_KEYS = frozenset({"AuthorizationKey"})  # configuration values not passed on


def frame_text(action: str, payload: Any) -> str:
    """A frame's payload as the log shows it; a charger's password set by
    ChangeConfiguration is not passed on."""
    if (
        action == "ChangeConfiguration"
        and isinstance(payload, dict)
        and payload.get("key") in SECRET_KEYS
    ):
        payload = {**payload, "value": "***"}
    text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    if len(text) > FRAME_CHARS:
        text = f"{text[:FRAME_CHARS]}… (cut: {len(text)} characters)"
    return text


class OcppLogFanOut:
    """Frames heard on this node, waiting for the next notification."""

    def __init__(self, node: str, notify: Callable[[str], None]) -> None:
        self.node = node
        self._notify = notify
        self._pending: list[list[str]] = []
        self.dropped = 0  # frames not passed on since the last notification

    def add(self, event: CsmsEvent) -> None:
        if event.kind is not EventKind.OCPP_MESSAGE or event.origin is not None:
            return
        if len(self._pending) >= PENDING_MAX:
            self.dropped += 1
            return
        data = event.data
        action = str(data.get("action") or "")[:60]
        self._pending.append(
            [
                event.timestamp.isoformat(),
                (event.charge_point or "")[:64],
                str(data.get("direction") or "")[:8],
                action,
                frame_text(action, data.get("payload")),
            ]
        )

    def flush(self) -> None:
        """Send one notification with as many waiting frames as fit (oldest first)."""
        if not self._pending and not self.dropped:
            return
        room = BATCH_BYTES - 100  # the envelope and the count
        frames: list[list[str]] = []
        for frame in self._pending:
            size = len(json.dumps(frame, separators=(",", ":")).encode()) + 1
            if size > room:
                break
            frames.append(frame)
            room -= size
        del self._pending[: len(frames)]
        message = {"origin": self.node, "frames": frames, "dropped": self.dropped}
        self._notify(json.dumps(message, separators=(",", ":")))
        self.dropped = 0


def read_batch(payload: str) -> list[CsmsEvent]:
    """The frames of one notification as the log's events, each field checked; a node's
    frames it had no room for become one line saying how many. Nothing for a malformed
    notification."""
    try:
        message = json.loads(payload)
        origin = str(message["origin"])[:100]
        frames = message["frames"]
        dropped = message["dropped"]
        if not isinstance(frames, list) or not isinstance(dropped, int) or dropped < 0:
            raise TypeError("frames must be a list, dropped a count")
        events = [_frame_event(frame, origin) for frame in frames[:MAX_FRAMES]]
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("Ignored a malformed OCPP log notification: %s", str(exc)[:200])
        return []
    if dropped:
        events.append(
            CsmsEvent(
                EventKind.OCPP_MESSAGE,
                f"{dropped} frames not shown",
                data={
                    "direction": "",
                    "action": "",
                    "payload": f"node {origin}: {dropped} frames not passed on (over the"
                    " shared log's bound)",
                },
                origin=origin,
            )
        )
    return events


def _frame_event(frame: Any, origin: str) -> CsmsEvent:
    if not isinstance(frame, list) or len(frame) != 5 or not all(isinstance(f, str) for f in frame):
        raise TypeError("a frame is five strings")
    stamp, ident, direction, action, text = frame
    timestamp = datetime.fromisoformat(stamp)
    if timestamp.tzinfo is None:
        raise ValueError("a frame's time must say its offset")
    return CsmsEvent(
        EventKind.OCPP_MESSAGE,
        f"{direction[:8]} {action[:60]}",
        charge_point=ident[:64] or None,
        data={
            "direction": direction[:8],
            "action": action[:60],
            "payload": text[: FRAME_CHARS + 40],
        },
        timestamp=timestamp,
        origin=origin,
    )
