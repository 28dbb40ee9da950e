"""A raw OCPP-J charger for hand-made and generated frames, and a bounded runner."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable
from typing import Any, TypeVar

from websockets.asyncio.client import ClientConnection, connect

from evcms_desktop.csms.server import CentralSystem
from tests.csms import helpers as csms_helpers

T = TypeVar("T")
STAMP = "2026-12-01T06:00:00Z"


def run(coro: Awaitable[T], timeout: float = 60) -> T:
    """The central system's tests' bounded runner, with room for thousands of frames."""
    return csms_helpers.run(coro, timeout)


class RawCharger:
    """One WebSocket connection that sends frames as given and reads the answers."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = itertools.count(1)

    @classmethod
    async def connect(cls, cs: CentralSystem, ident: str, **kwargs: Any) -> RawCharger:
        return await cls.at(cs.port, ident, cs.config.path_prefix, **kwargs)

    @classmethod
    async def at(cls, port: int, ident: str, prefix: str = "/ocpp", **kwargs: Any) -> RawCharger:
        kwargs.setdefault("subprotocols", ["ocpp1.6"])
        ws = await connect(f"ws://127.0.0.1:{port}{prefix}/{ident}", **kwargs)
        return cls(ws)

    async def send_raw(self, frame: str) -> list[Any]:
        """Send a frame and return the answer; the central system's own calls (a booked
        start's TxProfile, the local list) are passed over unanswered."""
        await self.ws.send(frame)
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
            if not (isinstance(message, list) and message[:1] == [2]):
                return message

    async def call(self, action: str, payload: dict[str, Any]) -> list[Any]:
        unique_id = f"m{next(self._ids)}"
        return await self.send_raw(json.dumps([2, unique_id, action, payload]))

    async def boot(self) -> None:
        answer = await self.call(
            "BootNotification", {"chargePointVendor": "Hostile", "chargePointModel": "T"}
        )
        assert answer[0] == 3 and answer[2]["status"] == "Accepted", answer

    async def start(self, id_tag: str = "NOBOOKING", meter_start: int = 0, **extra: Any) -> int:
        payload = {"connectorId": 1, "idTag": id_tag, "meterStart": meter_start, "timestamp": STAMP}
        answer = await self.call("StartTransaction", {**payload, **extra})
        assert answer[0] == 3, answer
        return int(answer[2]["transactionId"])

    async def close(self) -> None:
        await self.ws.close()


def meter_values(
    tx_id: int | None,
    *values: str,
    measurand: str = "Energy.Active.Import.Register",
    unit: str | None = "Wh",
    stamp: str = STAMP,
) -> dict[str, Any]:
    sampled = []
    for value in values:
        sample = {"value": value, "measurand": measurand}
        if unit is not None:
            sample["unit"] = unit
        sampled.append(sample)
    payload: dict[str, Any] = {
        "connectorId": 1,
        "meterValue": [{"timestamp": stamp, "sampledValue": sampled}],
    }
    if tx_id is not None:
        payload["transactionId"] = tx_id
    return payload
