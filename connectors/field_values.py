"""An event's field values as numbers and times, for the `Decoder`: what is accepted
as a number (`as_number`, `as_json_number`, `as_line_protocol_number`) and as an event
time (`epoch_ns`, `iso_ns`), each raising `RejectError` with the reason and what would
be accepted."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from streamer.core.records import BAD_TIME, NON_FINITE, NON_NUMERIC, NS_PER_S

NS_PER_UNIT = {"s": NS_PER_S, "ms": 1_000_000, "us": 1_000, "ns": 1}
# A number given as a string must still be a JSON number: no "1_000", no non-ASCII
# digits, no surrounding spaces (Python's float() accepts all three).
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
MAX_EXACT_INTEGER = 2**53  # a float holds every integer up to this, and not all beyond


class RejectError(Exception):
    """One field of an event cannot be used: the rejection's reason and detail."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason, self.detail = reason, detail


def shown(value: Any) -> str:
    """A value for a message: its repr, cut short (a huge integer has no repr at all)."""
    try:
        text = repr(value)
    except ValueError:
        return f"<an integer of {value.bit_length()} bits>"
    return text if len(text) <= 60 else text[:57] + "..."


def as_number(value: Any, name: str, strict: bool = False) -> float:
    """A value as a float. A string must be a number in JSON's grammar when `strict`
    (a JSON payload), else a decimal in ASCII without underscores (a CSV cell)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise RejectError(NON_NUMERIC, f"'{name}' is {type(value).__name__}, not a number")
    if isinstance(value, str) and (
        not _JSON_NUMBER.fullmatch(value) if strict else not value.isascii() or "_" in value
    ):
        if value.strip().lower().lstrip("+-") in ("nan", "inf", "infinity"):
            raise RejectError(NON_FINITE, f"'{name}' is {value[:40]!r}")
        raise RejectError(
            NON_NUMERIC, f"'{name}' is {value[:40]!r}, not a number in JSON's grammar"
        )
    try:
        number = float(value)
    except ValueError:
        raise RejectError(NON_NUMERIC, f"'{name}' is {str(value)[:40]!r}, not a number") from None
    except OverflowError:
        raise RejectError(NON_FINITE, f"'{name}' is an integer beyond a float") from None
    if not math.isfinite(number):
        raise RejectError(NON_FINITE, f"'{name}' is {number}")
    return number


def as_json_number(value: Any, name: str) -> float:
    return as_number(value, name, strict=True)


def as_line_protocol_number(value: Any, name: str) -> float:
    """A line protocol field as a float: a float, or an integer a float holds exactly.
    Strings and booleans are not numbers, whatever they hold."""
    if type(value) is float:
        if not math.isfinite(value):
            raise RejectError(NON_FINITE, f"'{name}' is {value}")
        return value
    if isinstance(value, bool):
        raise RejectError(NON_NUMERIC, f"'{name}' is a boolean field, not a number")
    if isinstance(value, str):
        raise RejectError(NON_NUMERIC, f"'{name}' is a string field, not a number")
    if not -MAX_EXACT_INTEGER <= value <= MAX_EXACT_INTEGER:
        raise RejectError(
            NON_NUMERIC,
            f"'{name}' is the integer {value}, which a float cannot hold exactly "
            "(beyond 2**53); send it as a float if rounding is acceptable",
        )
    return float(value)


def epoch_ns(value: Any, unit: str) -> int:
    scale = NS_PER_UNIT[unit]
    if isinstance(value, bool):
        raise RejectError(BAD_TIME, f"event time {value!r} is not a number of {unit}")
    if isinstance(value, int):
        return value * scale
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RejectError(
            BAD_TIME, f"event time {str(value)[:40]!r} is not a number of {unit}"
        ) from None
    if not math.isfinite(number):
        raise RejectError(BAD_TIME, f"event time {value!r} is not finite")
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        return int(value) * scale
    if not math.isfinite(number * scale):
        raise RejectError(BAD_TIME, f"event time {shown(value)} {unit} is beyond any time")
    return round(number * scale)


def iso_ns(value: Any) -> int:
    if not isinstance(value, str):
        raise RejectError(BAD_TIME, f"event time {value!r} is not an ISO 8601 string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        try:  # RFC 3339 lets `t` and `z` be lowercase; fromisoformat takes capitals only
            moment = datetime.fromisoformat(value.upper())
        except ValueError:
            raise RejectError(BAD_TIME, f"event time {value[:40]!r} is not ISO 8601") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * 1_000
