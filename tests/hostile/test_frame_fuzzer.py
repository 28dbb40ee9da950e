"""Generated frames against a real central system on 127.0.0.1 (hypothesis).

Four invariants hold after every batch of frames: the server still answers; every
plausible sample of an acknowledged MeterValues is stored; nothing non-finite or out of
bounds is stored as a reading; no connector is created.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evcms_desktop.csms.server import CentralSystem, CsmsConfig
from evcms_desktop.store.models import Connector, MeterValue
from tests.csms.helpers import running
from tests.hostile.helpers import STAMP, RawCharger, run

FRAMES_PER_EXAMPLE = 40
EXAMPLES = 60  # 2,400 frames in all

# Values the server must store (a register in Wh) and values it must never store.
GOOD = st.integers(0, 10**6).map(str)
BAD = st.sampled_from(
    ["NaN", "nan", "Infinity", "-Infinity", "1e400", "-1", "abc", "", "0x10", "1e11", " 5"]
) | st.text(max_size=40).filter(lambda t: not t.strip().isdigit())
HUGE = st.sampled_from([2**31, 2**63, 2**64, -(2**63) - 1, 10**30])
CONNECTOR = st.sampled_from([0, 1, 2, 3, 77, -1]) | HUGE
JSON_LEAF = (
    st.none()
    | st.booleans()
    | st.integers()
    | HUGE
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
)
JSON_VALUE = st.recursive(
    JSON_LEAF,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
ACTIONS = st.sampled_from(
    [
        "Heartbeat",
        "StatusNotification",
        "DataTransfer",
        "StartTransaction",
        "StopTransaction",
        "Authorize",
        "BootNotification",
        "FirmwareStatusNotification",
        "MakeCoffee",
    ]
)


@st.composite
def meter_frame(draw: Any) -> tuple[str, list[str]]:
    """A MeterValues CALL and the sample values in it that must be stored if acknowledged."""
    connector = draw(CONNECTOR)
    samples, good = [], []
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            value = draw(GOOD)
            good.append(value)
        else:
            value = draw(BAD)
        samples.append({"value": value, "measurand": "Energy.Active.Import.Register", "unit": "Wh"})
    payload = {
        "connectorId": connector,
        "meterValue": [{"timestamp": STAMP, "sampledValue": samples}],
    }
    if draw(st.booleans()):
        payload["transactionId"] = draw(st.integers(-5, 5) | HUGE)
    uid = draw(st.text("abcdef0123456789", min_size=1, max_size=8))
    return json.dumps([2, uid, "MeterValues", payload]), good if connector in (0, 1, 2) else []


@st.composite
def other_frame(draw: Any) -> tuple[str, list[str]]:
    """Any other frame: a known or unknown action with a random payload, or broken JSON."""
    kind = draw(st.integers(0, 3))
    if kind == 0:  # broken or odd framing
        return draw(
            st.sampled_from(["", "[", "[2]", "{}", '[2,"x","Heartbeat"]', "null", '[3,"z",{}]'])
        ), []
    payload = draw(
        st.dictionaries(
            st.sampled_from(
                [
                    "connectorId",
                    "errorCode",
                    "status",
                    "vendorId",
                    "data",
                    "idTag",
                    "meterStart",
                    "meterStop",
                    "timestamp",
                    "transactionId",
                    "chargePointVendor",
                    "chargePointModel",
                ]
            ),
            JSON_VALUE,
            max_size=6,
        )
    )
    if kind == 1 and draw(st.booleans()):
        payload = {"connectorId": draw(CONNECTOR), "errorCode": "NoError", "status": "Available"}
        return json.dumps([2, "s", "StatusNotification", payload]), []
    return json.dumps([2, draw(st.text(min_size=1, max_size=36)), draw(ACTIONS), payload]), []


FRAME = st.one_of(meter_frame(), other_frame())


def _answered(frame: str) -> bool:
    """A charger's CALLRESULT or CALLERROR gets no answer (it answers nothing we sent)."""
    try:
        parsed = json.loads(frame)
    except ValueError:
        return True
    return not (isinstance(parsed, list) and len(parsed) > 1 and parsed[0] in (3, 4))


def _plausible_reading(text: str) -> bool:
    try:
        number = float(text)
    except ValueError:
        return False
    return math.isfinite(number) and 0 <= number <= 10**10


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(frames=st.lists(FRAME, min_size=FRAMES_PER_EXAMPLE, max_size=FRAMES_PER_EXAMPLE))
def test_generated_frames_keep_the_invariants(db, station, config: CsmsConfig, frames) -> None:
    config.rate_per_second = config.rate_burst = 10_000  # the fuzzer is not a flooder
    connectors_before = Connector.select().count()
    cs = CentralSystem(config, db)

    async def scenario() -> tuple[list[str], list]:
        must_store: list[str] = []
        async with running(cs):
            charger = await RawCharger.connect(cs, "CP-A")
            await charger.boot()
            for frame, good in frames:
                if not _answered(frame):
                    await charger.ws.send(frame)
                    continue
                answer = await charger.send_raw(frame)
                if answer[0] == 3:
                    must_store.extend(good)
            still = await charger.call("Heartbeat", {})
            await charger.close()
        return must_store, still

    must_store, still = run(scenario())
    assert still[0] == 3  # 1: the server answers
    stored = [v for (v,) in MeterValue.select(MeterValue.value).tuples()]
    missing = set(must_store) - set(stored)
    assert not missing, f"acknowledged and not stored: {sorted(missing)[:5]}"  # 2
    assert all(_plausible_reading(v) for v in stored), [
        v for v in stored if not _plausible_reading(v)
    ][:5]  # 3
    assert Connector.select().count() == connectors_before  # 4
    MeterValue.delete().execute()
