"""The framing and validation layer on its own: the MeterValues fast path never accepts
what the 1.6 schema rejects, and the error codes follow OCPP-J 1.6."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ocpp.messages import Call, MessageType, get_validator

from evcms_desktop.csms.protocol import (
    FrameError,
    meter_values_fast_ok,
    parse_frame,
    validate_message,
)

GOOD = {
    "connectorId": 1,
    "transactionId": 5,
    "meterValue": [
        {
            "timestamp": "2026-12-01T06:00:00Z",
            "sampledValue": [
                {"value": "100", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                {"value": "55.5", "measurand": "SoC", "unit": "Percent", "location": "EV"},
                {"value": "7000", "measurand": "Power.Active.Import", "phase": "L1"},
            ],
        }
    ],
}
SCHEMA = get_validator(MessageType.Call, "MeterValues", "1.6")

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 2),
    st.floats(allow_nan=False, width=16),
    st.sampled_from(["", "1", "Wh", "kWh", "SoC", "L1", "EV", "Joule", "Sample.Periodic"]),
    st.lists(st.integers(), max_size=1),
    st.dictionaries(st.sampled_from(["value", "x"]), st.just("1"), max_size=1),
)
paths = st.sampled_from(
    [
        ("connectorId",),
        ("transactionId",),
        ("meterValue",),
        ("meterValue", 0),
        ("meterValue", 0, "timestamp"),
        ("meterValue", 0, "sampledValue"),
        ("meterValue", 0, "sampledValue", 0),
        ("meterValue", 0, "sampledValue", 0, "value"),
        ("meterValue", 0, "sampledValue", 0, "unit"),
        ("meterValue", 0, "sampledValue", 1, "measurand"),
        ("meterValue", 0, "sampledValue", 1, "location"),
        ("meterValue", 0, "sampledValue", 2, "phase"),
        ("meterValue", 0, "sampledValue", 2, "context"),
        ("meterValue", 0, "sampledValue", 2, "format"),
        ("meterValue", 0, "sampledValue", 2, "extra"),
        ("extra",),
    ]
)


def mutate(payload: dict, path: tuple, value: object, delete: bool) -> dict:
    """The payload with one value replaced or removed (unchanged if the path is gone)."""
    changed = copy.deepcopy(payload)
    try:
        target = changed
        for key in path[:-1]:
            target = target[key]
        if delete:
            del target[path[-1]]
        else:
            target[path[-1]] = value
    except (KeyError, IndexError, TypeError):
        return payload
    return changed


def test_good_payload_takes_the_fast_path():
    assert meter_values_fast_ok(GOOD)
    assert SCHEMA.is_valid(GOOD)


@settings(max_examples=400, deadline=None)
@given(mutations=st.lists(st.tuples(paths, values, st.booleans()), min_size=1, max_size=3))
def test_fast_path_accepts_nothing_the_schema_rejects(mutations):
    payload = GOOD
    for path, value, delete in mutations:
        payload = mutate(payload, path, value, delete)
    if meter_values_fast_ok(payload):
        assert SCHEMA.is_valid(payload), payload
    else:
        # Not accepted by the fast path: the schema decides, with its error code.
        try:
            validate_message(Call("1", "MeterValues", payload), "MeterValues")
        except Exception as exc:
            assert not SCHEMA.is_valid(payload)
            assert exc.code in {
                "FormationViolation",
                "ProtocolError",
                "TypeConstraintViolation",
                "PropertyConstraintViolation",
                "OccurenceConstraintViolation",
            }


@pytest.mark.parametrize(
    ("raw", "unique_id", "answerable"),
    [
        (b"\xff\xfe", "-1", True),
        ('[3,"r1"]', "r1", False),
        ('[4,"r2","GenericError"]', "r2", False),
        ('[2,"' + "x" * 37 + '","Heartbeat",{}]', "-1", True),
        ('[true,"t","Heartbeat",{}]', "t", True),
    ],
)
def test_frame_errors(raw, unique_id, answerable):
    with pytest.raises(FrameError) as caught:
        parse_frame(raw)
    assert caught.value.unique_id == unique_id
    assert caught.value.answerable is answerable
    assert caught.value.error.code == "FormationViolation"
