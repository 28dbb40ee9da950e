"""The tolerant reading of what chargers send, and the deviations it records.

Field chargers bend OCPP 1.6 in a handful of ways that lose nothing when read kindly.
`read_call` repairs a CALL's payload where the repair is certain, and says what it did:

- ``extra_field``: a field the 1.6 schema does not know (vendor additions) is ignored;
- ``string_truncated``: a string over its CiString length is cut to the length (never an
  idTag: a cut idTag would be another idTag);
- ``number_as_string``: a JSON number where a string is due (a meter value) is read as
  that number's text;
- ``unknown_enum_value``: a measurand outside the 1.6 list, or a vendor's errorCode, is
  kept as sent (nothing reads them as more than text);
- ``timestamp_without_offset``: a date-time without a UTC offset is read in the
  charger's time zone.

Anything else (a missing field, a wrong unit, a bad status, an integer sent as text)
keeps the strict answer. Under strict reading nothing is repaired: the first violation
gets its OCPP-J 1.6 CALLERROR. What the central system sends is always strictly valid.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jsonschema.exceptions import ValidationError as SchemaValidationError
from ocpp.exceptions import OCPPError, TypeConstraintViolationError
from ocpp.messages import Call, MessageType

from evcms_desktop.csms.protocol import (
    format_timestamp,
    meter_values_fast_ok,
    schema_error,
    schema_validator,
    validate_message,
)
from evcms_desktop.store.models import ChargePoint

log = logging.getLogger(__name__)

EXTRA_FIELD = "extra_field"
STRING_TRUNCATED = "string_truncated"
NUMBER_AS_STRING = "number_as_string"
UNKNOWN_ENUM_VALUE = "unknown_enum_value"
TIMESTAMP_WITHOUT_OFFSET = "timestamp_without_offset"
NO_SUBPROTOCOL = "no_subprotocol"

DEVIATION_KINDS = {
    EXTRA_FIELD: "fields outside the 1.6 schema, ignored",
    STRING_TRUNCATED: "strings over their 1.6 length, truncated",
    NUMBER_AS_STRING: "JSON numbers where 1.6 wants strings, read as text",
    UNKNOWN_ENUM_VALUE: "values outside the 1.6 lists (measurand, errorCode), kept as sent",
    TIMESTAMP_WITHOUT_OFFSET: "times without a UTC offset, read in the charger's time zone",
    NO_SUBPROTOCOL: "no WebSocket subprotocol offered, taken as ocpp1.6",
}

# Never truncated: the identity of a driver or booking.
_NOT_TRUNCATED = frozenset({"idTag", "parentIdTag"})
# Enumerations whose unknown values are kept as sent: (action or None for any, field).
_RAW_ENUMS = frozenset({(None, "measurand"), ("StatusNotification", "errorCode")})
RAW_VALUE_MAX = 50
_MAX_ROUNDS = 4


@dataclass(frozen=True)
class Deviation:
    kind: str
    example: str


def _where(path: Any) -> str:
    return "/".join(str(p) for p in path) or "payload"


def _set(payload: Any, path: list[Any], value: Any) -> None:
    target = payload
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value


def _repair(error: SchemaValidationError, payload: dict[str, Any], action: str) -> Deviation | None:
    """Repair one violation in place; None when it cannot be repaired."""
    path = list(error.absolute_path)
    where = f"{action}: {_where(path)}"
    field = path[-1] if path else None
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = error.schema.get("properties", {})
        extra = sorted(k for k in error.instance if k not in known)
        for key in extra:
            del error.instance[key]
        return Deviation(EXTRA_FIELD, f"{where}: ignored {', '.join(extra)}"[:300])
    if (
        error.validator == "maxLength"
        and isinstance(error.instance, str)
        and field not in _NOT_TRUNCATED
    ):
        limit = int(error.validator_value)
        _set(payload, path, error.instance[:limit])
        return Deviation(
            STRING_TRUNCATED,
            f"{where}: {len(error.instance)} characters cut to {limit}: {error.instance[:80]!r}",
        )
    if (
        error.validator == "type"
        and error.validator_value == "string"
        and isinstance(error.instance, int | float)
        and not isinstance(error.instance, bool)
        and path
    ):
        text = str(error.instance)
        _set(payload, path, text)
        return Deviation(NUMBER_AS_STRING, f"{where}: {error.instance!r} read as {text!r}")
    return None


def _raw_enum(error: SchemaValidationError, action: str) -> bool:
    path = list(error.absolute_path)
    field = path[-1] if path else None
    return (
        error.validator == "enum"
        and isinstance(error.instance, str)
        and len(error.instance) <= RAW_VALUE_MAX
        and ((None, field) in _RAW_ENUMS or (action, field) in _RAW_ENUMS)
    )


def _schema_repairs(message: Call) -> tuple[dict[str, Any], list[Deviation]]:
    validator = schema_validator(MessageType.Call, message.action)
    if validator is None:
        validate_message(message, message.action)  # raises the strict answer
    assert validator is not None
    payload = copy.deepcopy(message.payload)
    deviations: list[Deviation] = []
    kept_raw: set[tuple[Any, ...]] = set()
    for _ in range(_MAX_ROUNDS):
        repaired = False
        for error in validator.iter_errors(payload):
            if _raw_enum(error, message.action):
                where = tuple(error.absolute_path)
                if where not in kept_raw:
                    kept_raw.add(where)
                    deviations.append(
                        Deviation(
                            UNKNOWN_ENUM_VALUE,
                            f"{message.action}: {_where(where)}: {error.instance!r} kept",
                        )
                    )
                continue
            deviation = _repair(error, payload, message.action)
            if deviation is None:
                raise schema_error(error, message.action)
            deviations.append(deviation)
            repaired = True
            break  # the payload changed: validate it again
        if not repaired:
            return payload, deviations
    # Still failing after the rounds: answer with what is left.
    error = next(e for e in validator.iter_errors(payload) if not _raw_enum(e, message.action))
    raise schema_error(error, message.action)


def _timestamps(
    data: Any, path: list[Any], action: str, tz: tzinfo, strict: bool, found: list[Deviation]
) -> None:
    """Give every offset-less `timestamp` in the payload the charger's offset, in place."""
    if isinstance(data, list):
        for index, item in enumerate(data):
            _timestamps(item, [*path, index], action, tz, strict, found)
        return
    if not isinstance(data, dict):
        return
    for key, value in data.items():
        if key == "timestamp" and isinstance(value, str):
            _timestamp(data, [*path, key], value, action, tz, strict, found)
        elif isinstance(value, dict | list):
            _timestamps(value, [*path, key], action, tz, strict, found)


def _timestamp(
    data: dict[str, Any],
    path: list[Any],
    value: str,
    action: str,
    tz: tzinfo,
    strict: bool,
    found: list[Deviation],
) -> None:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return  # the handler answers for a date-time that is not one
    if moment.tzinfo is not None:
        return
    where = f"{action}: {_where(path)}"
    if strict:
        raise TypeConstraintViolationError(description=f"{where}: {value!r} has no UTC offset")
    data[path[-1]] = format_timestamp(moment.replace(tzinfo=tz))
    found.append(
        Deviation(TIMESTAMP_WITHOUT_OFFSET, f"{where}: {value!r} read as {data[path[-1]]}")
    )


def read_call(message: Call, *, strict: bool, tz: tzinfo) -> list[Deviation]:
    """Check a charger's CALL, repairing its payload in place unless `strict`.

    Returns the deviations tolerated; raises the OCPP-J 1.6 error for what is refused.
    """
    deviations: list[Deviation] = []
    if message.action == "MeterValues" and meter_values_fast_ok(message.payload):
        # Valid for certain, and its only timestamps are the meter values' own: the
        # most frequent message is not walked key by key.
        for index, item in enumerate(message.payload["meterValue"]):
            path = ["meterValue", index, "timestamp"]
            _timestamp(item, path, item["timestamp"], message.action, tz, strict, deviations)
        return deviations
    try:
        validate_message(message, message.action)
    except OCPPError:
        if strict:
            raise
        message.payload, deviations = _schema_repairs(message)
    _timestamps(message.payload, [], message.action, tz, strict, deviations)
    return deviations


def strict_for(cp: ChargePoint, default: bool) -> bool:
    """Whether a charger's frames are read strictly: its own setting, else `default`."""
    return default if cp.strict is None else bool(cp.strict)


def timezone_for(cp: ChargePoint) -> tzinfo:
    """The zone of a charger's offset-less times: its own setting, else its station's
    (UTC for a Pending charger that no site has yet)."""
    if cp.timezone:
        try:
            return ZoneInfo(cp.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("%s: unknown time zone %r; using the station's", cp.ident, cp.timezone)
    if cp.station_id is None:
        return UTC
    return ZoneInfo(cp.station.timezone)
