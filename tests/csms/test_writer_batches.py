"""The store writer's batches on both engines: a bad row in a batch is set aside alone,
the others are stored and acknowledged, and the writer goes on (on PostgreSQL the batch
is one pipeline, whose error surfaces at its sync)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from evcms_desktop.csms.writer import BatchWriter
from evcms_desktop.store.models import ChargePoint, Event, MeterValue
from tests.conftest import NOW
from tests.csms.helpers import run


def _reading(charge_point: int, value: int) -> tuple[type[MeterValue], dict[str, object]]:
    return (
        MeterValue,
        {
            "charge_point": charge_point,
            "connector_number": 1,
            "timestamp": NOW,
            "measurand": "Energy.Active.Import.Register",
            "value": str(value),
        },
    )


def test_a_bad_row_is_set_aside_alone_and_the_rest_of_its_batch_stored(db, station, tmp_path: Path):
    cp = ChargePoint.get(ChargePoint.ident == "CP-A")
    aside = tmp_path / "set-aside.jsonl"
    writer = BatchWriter(db, set_aside_path=aside)

    async def scenario() -> None:
        writer.start()
        try:
            # Queued together: one batch, whose third message refers to no charger.
            await asyncio.gather(
                *(
                    writer.write([_reading(cp.id if i != 2 else 999_999, i)], f"message {i}")
                    for i in range(5)
                )
            )
            after = {"kind": "test", "message": "after", "timestamp": NOW, "acknowledged": False}
            writer.add(Event, after)
            await writer.write([_reading(cp.id, 5)], "message 5")
        finally:
            await writer.stop()

    run(scenario())
    stored = sorted(int(v.value) for v in MeterValue.select())
    assert stored == [0, 1, 3, 4, 5]
    assert Event.select().where(Event.message == "after").count() == 1
    kept = [json.loads(line) for line in aside.read_text().splitlines()]
    assert [(k["origin"], k["row"]["value"]) for k in kept] == [("message 2", "2")]
    assert writer.set_aside_count == 1 and writer.store_error is None


def test_messages_arriving_one_by_one_are_committed_in_few_rounds(db, station, tmp_path: Path):
    """A round costs the same CPU however few its rows: messages that come one at a time
    within a round's gap are committed together, each acknowledged only once stored."""
    cp = ChargePoint.get(ChargePoint.ident == "CP-A")
    writer = BatchWriter(db, set_aside_path=tmp_path / "aside.jsonl", round_gap=1.0)
    rounds = 0
    commit = writer._commit

    def counted(*args):
        nonlocal rounds
        rounds += 1
        return commit(*args)

    writer._commit = counted  # type: ignore[method-assign]

    async def message(i: int) -> int:
        await asyncio.sleep(i * 0.002)
        await writer.write([_reading(cp.id, i)], f"message {i}")
        return MeterValue.select().where(MeterValue.value == str(i)).count()

    async def scenario() -> list[int]:
        writer.start()
        try:
            await writer.write([_reading(cp.id, 100)], "first")
            return await asyncio.gather(*(message(i) for i in range(20)))
        finally:
            await writer.stop()

    assert run(scenario()) == [1] * 20  # each stored when acknowledged
    assert rounds <= 3  # the first message's round, then the twenty in one or two
