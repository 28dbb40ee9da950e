"""Text and JSON from a charger made safe to store and to log.

A charger can send any JSON: lone UTF-16 surrogates (which SQLite cannot encode),
integers beyond 64 bits (which SQLite cannot bind), control characters (which forge log
lines) and deep nesting. These functions make such values harmless before they go on.
"""

from __future__ import annotations

import math
import re
from typing import Any

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_JSON_DEPTH = 16
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def log_safe(value: object, limit: int = 200) -> str:
    """`value` as one line for a log: control characters and surrogates escaped, cut."""
    text = value if isinstance(value, str) else str(value)
    cut = _UNSAFE.sub(_escape, text[:limit])
    return cut + "…" if len(text) > limit else cut


def clean_text(text: str, limit: int | None = None) -> str:
    """`text` with lone surrogates replaced (U+FFFD) and cut to `limit` characters."""
    if limit is not None:
        text = text[:limit]
    return _SURROGATE.sub("\ufffd", text)


def clean_json(value: Any, depth: int = 0) -> Any:
    """A JSON value that SQLite and the log can take: clean strings and keys, integers
    beyond 64 bits and non-finite numbers as text, nesting cut at MAX_JSON_DEPTH."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if INT64_MIN <= value <= INT64_MAX else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth >= MAX_JSON_DEPTH:
        return "…"
    if isinstance(value, dict):
        return {clean_text(str(k)): clean_json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v, depth + 1) for v in value]
    return clean_text(str(value))


def int64_or_none(value: Any) -> int | None:
    """An integer that fits a 64-bit column, else None."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if INT64_MIN <= value <= INT64_MAX else None
