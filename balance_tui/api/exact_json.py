"""JSON with exact amounts: a Decimal is written as the JSON number it is (`3800.00`), never via float.

`json.dumps` knows no Decimal, and FastAPI's encoder turns one into a float (3800.00 -> 3800.0,
and 0.1 + 0.2 drifts). Documents are small trees of dict/list/str/int/bool/None/Decimal and
measured floats (rates, milliseconds: never money), so a small encoder is enough.
"""

from __future__ import annotations

import math
from decimal import Decimal
from json.encoder import encode_basestring_ascii
from typing import Any


def dumps(document: Any) -> bytes:
    """Compact UTF-8 JSON (ASCII-escaped); Decimal as an exact number literal, NaN/inf floats as null."""
    parts: list[str] = []
    _encode(document, parts.append)
    return "".join(parts).encode("ascii")


def decimal_literal(value: Decimal) -> str:
    """`Decimal("3800.00")` -> `3800.00`: every digit kept, never an exponent."""
    if not value.is_finite():
        raise ValueError(f"{value} is not an amount")
    return format(value, "f")


def _encode(value: Any, write: Any) -> None:
    # Order: the common leaf types first.
    if isinstance(value, str):
        write(encode_basestring_ascii(value))
    elif value is None:
        write("null")
    elif value is True:
        write("true")
    elif value is False:
        write("false")
    elif isinstance(value, int):
        write(int.__repr__(value))
    elif isinstance(value, Decimal):
        write(decimal_literal(value))
    elif isinstance(value, float):
        write(float.__repr__(value) if math.isfinite(value) else "null")
    elif isinstance(value, dict):
        write("{")
        first = True
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be strings, not {type(key).__name__}")
            if not first:
                write(",")
            first = False
            write(encode_basestring_ascii(key))
            write(":")
            _encode(item, write)
        write("}")
    elif isinstance(value, (list, tuple)):
        write("[")
        for index, item in enumerate(value):
            if index:
                write(",")
            _encode(item, write)
        write("]")
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as JSON")
