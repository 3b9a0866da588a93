"""The record types shared by connectors, the window and the models.

An `Observation` is one accepted value of one series at one event time; a `Rejection` is
an input that could not be used, kept with its original bytes and the reason. Both carry
the `Position` they came from, so a source commits only what the sinks acknowledged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SeriesKind = Literal["price", "sensor"]

NS_PER_S = 1_000_000_000

# Why an input was rejected. Counted, logged and dead-lettered under these names.
MALFORMED = "malformed"  # not JSON / line protocol / a CSV row we can read
MISSING_FIELD = "missing_field"  # the series, value or time field is absent
NON_NUMERIC = "non_numeric"  # the value is not a number
NON_FINITE = "non_finite"  # NaN or infinite
BAD_TIME = "bad_time"  # unreadable time, before 1971, or more than max_future ahead
UNKNOWN_SERIES = "unknown_series"  # not in pipeline.series_allowlist
LATE = "late"  # its step had closed (beyond allowed_lateness)
SINK_REJECTED = "sink_rejected"  # a sink refused the write (4xx) with its message

REASONS = (
    MALFORMED,
    MISSING_FIELD,
    NON_NUMERIC,
    NON_FINITE,
    BAD_TIME,
    UNKNOWN_SERIES,
    LATE,
    SINK_REJECTED,
)


@dataclass(frozen=True, slots=True)
class Position:
    """Where a record was read: the source's name, a partition and an offset in it.

    Sources without partitions use partition 0; a replay file uses the row number.
    """

    source: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Observation:
    """One value of one series at an event time (ns since the epoch)."""

    series: str
    time_ns: int
    value: float
    kind: SeriesKind = "sensor"
    position: Position | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """An input that was not used: why, in words, and its original bytes."""

    reason: str
    detail: str
    raw: bytes
    position: Position | None = None
