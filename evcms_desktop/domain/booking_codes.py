"""Booking IDs: what a driver types at the charger, sent on as the OCPP idTag (20 chars max).

Ten characters from an alphabet without the look-alikes 0/O, 1/I/L give about 49 bits
from the OS's CSPRNG: short enough to type, far too many to guess.
"""

from __future__ import annotations

import secrets

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 10
ID_TAG_MAX = 20


def new_booking_code(length: int = CODE_LENGTH) -> str:
    if not 6 <= length <= ID_TAG_MAX:
        raise ValueError(f"a booking code has 6 to {ID_TAG_MAX} characters")
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def normalize_code(text: str) -> str:
    """What a person typed, as stored: upper case, without spaces or dashes."""
    return "".join(ch for ch in text.upper() if ch not in " -\t")


def looks_like_code(text: str) -> bool:
    code = normalize_code(text)
    return 0 < len(code) <= ID_TAG_MAX and all(ch in ALPHABET for ch in code)
