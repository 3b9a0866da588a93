"""Durations as config writes them: a number and a unit, `500ms`, `10s`, `5m`, `1h`, `2d`.

>>> parse_duration("1.5s")
datetime.timedelta(seconds=1, microseconds=500000)
>>> format_duration(parse_duration("90m"))
'90m'
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

UNITS: dict[str, timedelta] = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_EXPECTED = "a number and a unit (ms, s, m, h, d), e.g. '500ms', '10s', '5m', '1h'"
# The daemon counts time in 64-bit nanoseconds, which hold about 292 years.
MAX_DURATION = timedelta(days=106_751)


def looks_like_duration(value: Any) -> bool:
    """Whether value is written as a duration (a number and a unit), long or not."""
    return isinstance(value, str) and _PATTERN.match(value) is not None


def parse_duration(value: Any) -> timedelta:
    """A timedelta from a duration string; ValueError saying what is accepted otherwise,
    also for one too long for the daemon's nanosecond clock (`MAX_DURATION`)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"expected a duration: {_EXPECTED}")
    if isinstance(value, (int, float)):
        raise ValueError(f"{value!r} has no unit; expected {_EXPECTED}")
    match = _PATTERN.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not a duration; expected {_EXPECTED}")
    number, unit = match.groups()
    # Exact decimal arithmetic: a float would round a long duration's last microseconds.
    micros = Decimal(number) * (UNITS[unit] // timedelta(microseconds=1))
    if micros > MAX_DURATION // timedelta(microseconds=1):
        raise ValueError(
            f"{value!r} is too long; at most {format_duration(MAX_DURATION)} (about 292 "
            "years, what a 64-bit count of nanoseconds holds)"
        )
    return timedelta(microseconds=int(micros.to_integral_value(ROUND_HALF_EVEN)))


def format_duration(value: timedelta) -> str:
    """The shortest exact spelling: the largest unit that divides the duration."""
    micros = value // timedelta(microseconds=1)
    if micros == 0:
        return "0s"
    for unit in ("d", "h", "m", "s", "ms"):
        step = UNITS[unit] // timedelta(microseconds=1)
        if micros % step == 0:
            return f"{micros // step}{unit}"
    return f"{micros // 1000}.{micros % 1000:03d}".rstrip("0") + "ms"
