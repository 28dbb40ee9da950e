"""OCPP-J 1.6 framing on top of the `ocpp` library, with the library's deviations fixed.

`ocpp` 2.1 gets several things wrong for 1.6 (checked against OCPP-J 1.6 section 4.2.3):

- a frame that is not JSON, not an array or short of elements is logged and dropped;
  OCPP-J needs a CALLERROR. We answer ``FormationViolation`` (the 1.6 spelling; the
  library uses 2.0.1's ``FormatViolation``) with the frame's unique id, or ``"-1"`` when
  it has none (the convention OCPP 2.0.1 made explicit).
- the meanings of ``NotImplemented`` and ``NotSupported`` are swapped: in 1.6 an action
  the receiver does not know is ``NotImplemented``; one it knows but does not serve
  (e.g. a charger sending ``Reset``) is ``NotSupported``.
- schema violations: an enum, pattern or range breach is ``PropertyConstraintViolation``
  (the library says ``FormatViolation``); too many or too few array items is
  ``OccurenceConstraintViolation`` (1.6 spelling); a missing required field stays
  ``ProtocolError`` ("payload for action is incomplete"), a wrong JSON type and a string
  over its CiString length stay ``TypeConstraintViolation``, an unknown field is
  ``FormationViolation``.
- validation runs on the loop thread with cached validators instead of the library's
  thread hop (``ASYNC_VALIDATION``, racy: mobilityhouse/ocpp#705), and MeterValues, the
  one hot message, is first checked by a strict hand-written test that only accepts
  what the schema accepts; anything it does not accept goes through jsonschema, so the
  error code is the schema's.
- responses are matched to calls by unique id (a late answer to a call that timed out
  cannot be taken for the answer to the next call).
"""

from __future__ import annotations

import asyncio
import decimal
import functools
import json
import logging
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from jsonschema import Draft4Validator
from jsonschema.exceptions import ValidationError as SchemaValidationError
from ocpp.charge_point import (
    camel_to_snake_case,
    remove_nones,
    serialize_as_dict,
    snake_to_camel_case,
)
from ocpp.exceptions import (
    FormationViolationError,
    InternalError,
    NotSupportedError,
    OccurenceConstraintViolationError,
    OCPPError,
    PropertyConstraintViolationError,
    ProtocolError,
    TypeConstraintViolationError,
)
from ocpp.exceptions import (
    NotImplementedError as OcppNotImplementedError,
)
from ocpp.messages import Call, CallError, CallResult, MessageType, get_validator
from ocpp.v16 import ChargePoint as V16ChargePoint
from ocpp.v16.enums import Action
from websockets.exceptions import ConnectionClosed

from evcms_desktop.domain.text import log_safe

log = logging.getLogger(__name__)

OCPP_VERSION = "1.6"
SUBPROTOCOL = "ocpp1.6"
DEFAULT_PORT = 9000
DEFAULT_PATH_PREFIX = "/ocpp"
UNKNOWN_UNIQUE_ID = "-1"
MAX_UNIQUE_ID_LENGTH = 36
# No 1.6 message nests deeper than about eight; a deeper frame is refused before it is
# walked (Python's own recursion limit would end the connection instead).
MAX_JSON_DEPTH = 32
KNOWN_ACTIONS = frozenset(a.value for a in Action)
# The head of a frame too large to parse: its type and unique id, to address the answer.
_FRAME_HEAD = re.compile(r'\s*\[\s*([234])\s*,\s*"([^"\\]{1,36})"')
# Python refuses to read integers longer than this (sys.get_int_max_str_digits()).
MAX_INT_DIGITS = 4300
_LONG_NUMBER = re.compile(r'"([^"\\]{1,40})"\s*:\s*-?[0-9]{' + str(MAX_INT_DIGITS + 1) + ",}")

# The library parses these with Decimal so that the schemas' multipleOf 0.1 holds.
_DECIMAL_SCHEMAS = {
    (MessageType.Call, "SetChargingProfile"),
    (MessageType.Call, "RemoteStartTransaction"),
    (MessageType.CallResult, "GetCompositeSchedule"),
}


class FrameError(Exception):
    """A frame that is not a well-formed OCPP-J message."""

    def __init__(self, unique_id: str, error: OCPPError, *, answerable: bool = True) -> None:
        super().__init__(error.description)
        self.unique_id = unique_id
        self.error = error
        self.answerable = answerable  # only a CALL (or what may be one) gets a CALLERROR


def _too_deep(raw: str) -> bool:
    """True if the brackets of `raw` (outside strings) nest deeper than MAX_JSON_DEPTH."""
    depth = 0
    in_string = escaped = False
    for char in raw:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _too_long_number(raw: str) -> OCPPError:
    """The answer to a frame with an integer of thousands of digits, naming its field."""
    match = _LONG_NUMBER.search(raw)
    field = f"{log_safe(match.group(1), 40)}: " if match else ""
    return TypeConstraintViolationError(
        description=f"{field}a number of more than {MAX_INT_DIGITS} digits is too long"
    )


def _head_unique_id(raw: str) -> str:
    match = _FRAME_HEAD.match(raw[:100])
    return match.group(2) if match and match.group(1) == "2" else UNKNOWN_UNIQUE_ID


def _formation(description: str) -> FormationViolationError:
    return FormationViolationError(description=description)


def _not_text(value: str) -> bool:
    if "\x00" in value:
        return True
    if value.isascii():
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _surrogate_at(value: Any, path: str) -> tuple[str, str] | None:
    """Where in a parsed frame a string holds a lone UTF-16 surrogate or a NUL (which
    PostgreSQL's text refuses), and that string; or None."""
    if isinstance(value, str):
        return (path, value) if _not_text(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if _not_text(key):
                return f"{path}/(a key)", key
            found = _surrogate_at(item, f"{path}/{key}")
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _surrogate_at(item, f"{path}/{index}")
            if found is not None:
                return found
    return None


def _check_text(raw: str, frame: list[Any], unique_id: str) -> None:
    """Refuse a frame whose strings are not all text: JSON lets a \\u escape name half of
    a UTF-16 pair, which no store, log or encoder takes, or NUL, which PostgreSQL cannot
    store (so neither store takes it). Checked here, once for every action and field, and
    only in a frame with a \\u escape (the only way to send either)."""
    if "\\u" not in raw:
        return
    found = _surrogate_at(frame, "")
    if found is None:
        return
    where, value = found
    call = frame[0] == MessageType.Call and not isinstance(frame[0], bool)
    action = frame[2] if call and len(frame) > 2 and isinstance(frame[2], str) else "Frame"
    if _not_text(action):
        action = "Frame"
    field = where.removeprefix("/3/") if call else where.lstrip("/")
    what = "a NUL character" if "\x00" in value else "a lone UTF-16 surrogate"
    raise FrameError(
        UNKNOWN_UNIQUE_ID if _not_text(unique_id) else unique_id,
        PropertyConstraintViolationError(
            description=f"{action}: {log_safe(field, 120)}: {what} is not text"[:255]
        ),
        answerable=call,
    )


def parse_frame(raw: str | bytes) -> Call | CallResult | CallError:
    """One WebSocket message as a Call, CallResult or CallError; FrameError if malformed."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FrameError(UNKNOWN_UNIQUE_ID, _formation("Frame is not UTF-8 text")) from exc
    if raw.count("[") + raw.count("{") > MAX_JSON_DEPTH and _too_deep(raw):
        raise FrameError(
            _head_unique_id(raw), _formation(f"Frame nests deeper than {MAX_JSON_DEPTH} levels")
        )
    try:
        frame = json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise FrameError(UNKNOWN_UNIQUE_ID, _formation("Frame is not valid JSON")) from exc
    except ValueError as exc:  # valid JSON, but an integer beyond Python's digit limit
        raise FrameError(_head_unique_id(raw), _too_long_number(raw)) from exc
    if not isinstance(frame, list) or not frame:
        raise FrameError(UNKNOWN_UNIQUE_ID, _formation("Frame is not a JSON array"))
    unique_id = frame[1] if len(frame) > 1 else None
    if not isinstance(unique_id, str) or not 0 < len(unique_id) <= MAX_UNIQUE_ID_LENGTH:
        raise FrameError(
            UNKNOWN_UNIQUE_ID, _formation("UniqueId must be a string of 1 to 36 characters")
        )
    _check_text(raw, frame, unique_id)
    type_id = frame[0]
    if type_id == MessageType.Call and not isinstance(type_id, bool):
        if len(frame) != 4 or not isinstance(frame[2], str) or not isinstance(frame[3], dict):
            raise FrameError(unique_id, _formation("A CALL is [2, uniqueId, action, {payload}]"))
        return Call(unique_id, frame[2], frame[3])
    if type_id == MessageType.CallResult and not isinstance(type_id, bool):
        if len(frame) != 3 or not isinstance(frame[2], dict):
            raise FrameError(unique_id, _formation("Malformed CALLRESULT"), answerable=False)
        return CallResult(unique_id, frame[2])
    if type_id == MessageType.CallError and not isinstance(type_id, bool):
        if len(frame) != 5 or not all(isinstance(x, str) for x in frame[2:4]):
            raise FrameError(unique_id, _formation("Malformed CALLERROR"), answerable=False)
        details = frame[4] if isinstance(frame[4], dict) else {}
        return CallError(unique_id, frame[2], frame[3], details)
    raise FrameError(unique_id, _formation(f"MessageTypeId {type_id!r} is not 2, 3 or 4"))


def schema_error(exc: SchemaValidationError, action: str) -> OCPPError:
    where = "/".join(str(p) for p in exc.absolute_path) or "payload"
    description = f"{action}: {where}: {exc.message}"[:255]
    kind = exc.validator
    if kind == "required":
        return ProtocolError(description=description)
    if kind in ("type", "maxLength"):
        return TypeConstraintViolationError(description=description)
    if kind in ("minItems", "maxItems"):
        return OccurenceConstraintViolationError(description=description)
    if kind in ("enum", "minimum", "maximum", "multipleOf", "pattern", "minLength"):
        return PropertyConstraintViolationError(description=description)
    return FormationViolationError(description=description)


@functools.cache
def schema_validator(message_type_id: int, action: str) -> Draft4Validator | None:
    """The schema validator of a message, compiled once; None when 1.6 has no schema."""
    parse_float = decimal.Decimal if (message_type_id, action) in _DECIMAL_SCHEMAS else float
    try:
        return get_validator(message_type_id, action, OCPP_VERSION, parse_float=parse_float)
    except (OSError, ValueError):
        return None


def _meter_values_enums() -> dict[str, frozenset[str]]:
    schema = schema_validator(MessageType.Call, "MeterValues")
    assert schema is not None
    sampled = schema.schema["properties"]["meterValue"]["items"]["properties"]["sampledValue"]
    return {
        name: frozenset(spec["enum"])
        for name, spec in sampled["items"]["properties"].items()
        if "enum" in spec
    }


_SAMPLED_ENUMS = _meter_values_enums()
_SAMPLED_KEYS = frozenset(_SAMPLED_ENUMS) | {"value"}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def meter_values_fast_ok(payload: dict[str, Any]) -> bool:
    """True only if the MeterValues schema certainly accepts `payload` (no false positives)."""
    if not _is_int(payload.get("connectorId")) or not payload.keys() <= {
        "connectorId",
        "transactionId",
        "meterValue",
    }:
        return False
    if "transactionId" in payload and not _is_int(payload["transactionId"]):
        return False
    values = payload.get("meterValue")
    if not isinstance(values, list) or not values:
        return False
    for item in values:
        if (
            not isinstance(item, dict)
            or item.keys() != {"timestamp", "sampledValue"}
            or not isinstance(item["timestamp"], str)
        ):
            return False
        samples = item["sampledValue"]
        if not isinstance(samples, list) or not samples:
            return False
        for sample in samples:
            if not isinstance(sample, dict) or not isinstance(sample.get("value"), str):
                return False
            if not sample.keys() <= _SAMPLED_KEYS:
                return False
            for key, value in sample.items():
                if key != "value" and (
                    not isinstance(value, str) or value not in _SAMPLED_ENUMS[key]
                ):
                    return False
    return True


def validate_message(message: Call | CallResult, action: str) -> None:
    """Check a payload against its 1.6 schema; raise the OCPP-J 1.6 error for a violation."""
    type_id = message.message_type_id
    if (
        type_id == MessageType.Call
        and action == "MeterValues"
        and meter_values_fast_ok(message.payload)
    ):
        return
    validator = schema_validator(type_id, action)
    if validator is None:
        raise OcppNotImplementedError(description=f"No 1.6 schema for {action}")
    payload = message.payload
    if (type_id, action) in _DECIMAL_SCHEMAS:
        payload = json.loads(json.dumps(payload), parse_float=decimal.Decimal)
    error = next(iter(validator.iter_errors(payload)), None)
    if error is not None:
        raise schema_error(error, action)


@functools.cache
def _snake_key(key: str) -> str:
    return next(iter(camel_to_snake_case({key: None})))


def to_snake(data: Any) -> Any:
    """camel_to_snake_case with the key conversion cached (it is two regexes per key)."""
    if isinstance(data, dict):
        return {_snake_key(k): to_snake(v) for k, v in data.items()}
    if isinstance(data, list):
        return [to_snake(v) for v in data]
    return data


def to_payload(dataclass_payload: Any) -> dict[str, Any]:
    """A call or call_result dataclass as the camelCase dict sent on the wire."""
    return snake_to_camel_case(remove_nones(serialize_as_dict(dataclass_payload)))


def _error_payload(error: CallError) -> dict[str, Any]:
    return {"errorCode": error.error_code, "errorDescription": error.error_description}


class OcppEndpoint(V16ChargePoint):
    """One end of an OCPP 1.6J connection: the central system's view of a charger, or a
    simulated charger's view of the central system. Handlers are `@on` methods."""

    def __init__(
        self,
        ident: str,
        connection: Any,
        response_timeout: float = 30.0,
        max_frame: int | None = None,
    ) -> None:
        super().__init__(ident, connection, response_timeout=response_timeout)
        self.max_frame = max_frame  # bytes; larger frames are answered, not parsed
        self._pending: dict[str, tuple[str, asyncio.Future[CallResult | CallError]]] = {}
        self._background: set[asyncio.Task[Any]] = set()

    # Hooks for subclasses.
    def on_message(self, direction: str, action: str, payload: dict[str, Any]) -> None:
        """Called for every message sent or received. A CALLERROR comes with the action
        it answers (or "CallError" when unknown) and {"errorCode", "errorDescription"}."""

    def on_protocol_error(self, error: OCPPError, unique_id: str, raw: str | None) -> None:
        """Called for every frame or payload answered (or dropped) as an error; logs it."""
        frame = "" if raw is None else f": {log_safe(raw)}"
        log.warning("%s: %s: %s%s", self.id, error.code, log_safe(error.description, 300), frame)

    def on_unsolicited(self, message: CallResult | CallError, raw: str | bytes) -> None:
        """Called for an answer to no pending call (late, repeated or made up); logs it."""
        log.warning("%s: answer to no pending call: %s", self.id, log_safe(raw))

    def admit_malformed(self) -> bool:
        """Called for every malformed or oversized frame; False drops it unanswered (a
        subclass counts it against a rate limit)."""
        return True

    def admit(self, message: Call) -> None:
        """Raise an OCPPError to refuse a CALL before it is validated (rate limits)."""

    def read_call(self, message: Call) -> None:
        """Check a received CALL against its schema (a subclass may repair its payload)."""
        validate_message(message, message.action)

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        """Run a coroutine beside the receive loop, holding a reference until it ends."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: background task failed", self.id, exc_info=task.exception())

    def cancel_background(self) -> None:
        for task in list(self._background):
            task.cancel()

    async def start(self) -> None:
        """Receive and route messages until the connection closes."""
        async for raw in self._connection:
            await self.route_message(raw)
            # Frames already received are read without suspending: let the other
            # connections (and a close this one's frames caused) run between them.
            await asyncio.sleep(0)

    def fail_pending(self, exc: Exception) -> None:
        """End the calls waiting for an answer (the connection is gone)."""
        for _, future in self._pending.values():
            if not future.done():
                future.set_exception(exc)

    def _frame_size(self, raw: str | bytes) -> int:
        if isinstance(raw, bytes) or self.max_frame is None or len(raw) * 4 <= self.max_frame:
            return len(raw)
        return len(raw.encode("utf-8"))

    async def route_message(self, raw_msg: str | bytes) -> None:
        if self.max_frame is not None and self._frame_size(raw_msg) > self.max_frame:
            if self.admit_malformed():
                await self._refuse_oversized(raw_msg)
            return
        try:
            message = parse_frame(raw_msg)
        except FrameError as exc:
            if not self.admit_malformed():
                return
            text = raw_msg if isinstance(raw_msg, str) else repr(raw_msg[:200])
            self.on_protocol_error(exc.error, exc.unique_id, text)
            if exc.answerable:
                await self._send_error(exc.unique_id, exc.error)
            return
        if isinstance(message, Call):
            await self._handle_call(message)
            return
        pending = self._pending.get(message.unique_id)
        if pending is None:
            self.on_unsolicited(message, raw_msg)
            return
        action, future = pending
        if isinstance(message, CallResult):
            message.action = action
            self.on_message("in", action, message.payload)
        else:
            self.on_message("in", action, _error_payload(message))
        if not future.done():
            future.set_result(message)

    async def _refuse_oversized(self, raw: str | bytes) -> None:
        head = raw[:100] if isinstance(raw, str) else raw[:100].decode("utf-8", "replace")
        match = _FRAME_HEAD.match(head)
        size = self._frame_size(raw)
        error = FormationViolationError(
            description=f"Frame of {size} bytes is over the limit of {self.max_frame}",
            details={"frameBytes": size, "limit": self.max_frame},
        )
        unique_id = match.group(2) if match else UNKNOWN_UNIQUE_ID
        self.on_protocol_error(error, unique_id, head)
        if match is None or match.group(1) == "2":
            await self._send_error(unique_id, error)

    async def _send_error(
        self, unique_id: str, error: OCPPError, action: str = "CallError"
    ) -> None:
        frame = CallError(unique_id, error.code, error.description, error.details)
        await self._send(frame.to_json())
        self.on_message("out", action, _error_payload(frame))

    async def refuse(self, msg: Call, error: OCPPError) -> None:
        """Answer a CALL that `admit` refused (a subclass may make this cheaper)."""
        self.on_message("in", msg.action, msg.payload)
        self.on_protocol_error(error, msg.unique_id, None)
        await self._send_error(msg.unique_id, error, msg.action)

    async def _handle_call(self, msg: Call) -> None:
        try:
            self.admit(msg)
        except OCPPError as error:
            await self.refuse(msg, error)
            return
        self.on_message("in", msg.action, msg.payload)
        handlers = self.route_map.get(msg.action)
        try:
            if handlers is None or "_on_action" not in handlers:
                if msg.action in KNOWN_ACTIONS:
                    raise NotSupportedError(
                        description=f"{msg.action} is not served by this endpoint"
                    )
                raise OcppNotImplementedError(description=f"Unknown action {msg.action!r}")
            skip = handlers.get("_skip_schema_validation", False)
            if not skip:
                self.read_call(msg)
            kwargs = to_snake(msg.payload)
            response = handlers["_on_action"](**kwargs)
            if asyncio.iscoroutine(response):
                response = await response
            result = msg.create_call_result(to_payload(response))
            if not skip:
                validate_message(result, msg.action)
        except OCPPError as error:
            self.on_protocol_error(error, msg.unique_id, None)
            await self._send_error(msg.unique_id, error, msg.action)
            return
        except Exception:
            log.exception("%s: handler of %s failed", self.id, log_safe(msg.action, 40))
            error = InternalError(description=f"{msg.action} could not be processed")
            self.on_protocol_error(error, msg.unique_id, None)
            await self._send_error(msg.unique_id, error, msg.action)
            return
        await self._send(result.to_json())
        self.on_message("out", msg.action, result.payload)
        after = handlers.get("_after_action")
        if after is not None:
            outcome = after(**kwargs)
            if asyncio.iscoroutine(outcome):
                self.spawn(outcome)

    async def call(self, payload: Any, *, timeout: float | None = None) -> Any:  # type: ignore[override]
        """Send a CALL and return the typed answer; a CALLERROR is raised as its OCPPError,
        a closed connection as ConnectionError, no answer in time as TimeoutError.

        Never await this inside an `@on` handler: the answer arrives on the receive loop
        that the handler is blocking. Use `spawn` (or an `@after` hook).
        """
        action = type(payload).__name__
        message = Call(str(uuid.uuid4()), action, to_payload(payload))
        validate_message(message, action)
        loop = asyncio.get_running_loop()
        async with self._call_lock:
            future: asyncio.Future[CallResult | CallError] = loop.create_future()
            self._pending[message.unique_id] = (action, future)
            try:
                await self._send(message.to_json())
                self.on_message("out", action, message.payload)
                answer = await asyncio.wait_for(future, timeout or self._response_timeout)
            except ConnectionClosed as exc:
                raise ConnectionError(f"{self.id}: connection closed") from exc
            finally:
                self._pending.pop(message.unique_id, None)
        if isinstance(answer, CallError):
            raise answer.to_exception()
        validate_message(answer, action)
        result_type: Callable[..., Any] = getattr(self._call_result, action)
        return result_type(**to_snake(answer.payload))

    async def _send(self, message: str) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s: send %s", self.id, log_safe(message, 1000))
        await self._connection.send(message)


class TimestampError(ValueError):
    """A timestamp that is not an RFC 3339 date-time."""


def parse_timestamp(text: str) -> datetime:
    """An OCPP dateTime as an aware UTC datetime; one without an offset is refused (the
    central system's tolerant reading gives a charger's offset-less times its zone first)."""
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError) as exc:
        raise TimestampError(f"{text!r} is not a date-time") from exc
    if moment.tzinfo is None:
        raise TimestampError(f"{text!r} has no UTC offset")
    return moment.astimezone(UTC)


def format_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def websocket_url(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    path_prefix: str = DEFAULT_PATH_PREFIX,
    *,
    tls: bool = False,
) -> str:
    """The endpoint chargers connect to, without the trailing /{chargePointId}."""
    return f"{'wss' if tls else 'ws'}://{host}:{port}{path_prefix.rstrip('/')}"
