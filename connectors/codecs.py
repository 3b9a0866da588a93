"""Decode raw events (JSON, line protocol, or a CSV row) into observations or rejections.

Price ticks look like `{symbol, price, size?, ts}` and sensor readings like
`{sensor_id, value | values{...}, ts}`; the names come from the source's `fields` map.
A multi-value reading becomes one series per value, `sensor_id/field`, unless
`split_fields` is off. Anything unusable becomes a `Rejection` with its reason and its
original bytes: decoding never raises, whatever the bytes. Payloads over
`max_payload_bytes` are not parsed; JSON nested deeper than the parsers' 1,024 levels
is malformed; numbers beyond a float are non-finite; a series id must be valid UTF-8
without control characters or backslashes, at most `max_series_bytes` long (InfluxDB
tags hold 64 KiB; the checkpoint stores ids as UTF-8 text).

A JSON object that gives one key twice (at any depth) is malformed unless
`duplicate_keys="last"`. A line protocol payload is read line by line as the InfluxDB
server reads it (see `connectors.line_protocol`): each bad line is one rejection whose
detail starts with its line number, and a payload of comments and blank lines is empty.
Its timestamps are ns unless `time_unit` says otherwise; a line without one gets the
arrival time (`now_ns`, cut to the unit) unless `missing_time="reject"`. Only numbers are
values: a string field never is, nor an integer beyond 2**53, which a float would round.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

from connectors.field_values import (
    NS_PER_UNIT,
    RejectError,
    as_json_number,
    as_line_protocol_number,
    as_number,
    epoch_ns,
    iso_ns,
    shown,
)
from connectors.json_payload import duplicate_key, loads
from connectors.line_protocol import parse_lines
from streamer.core.records import (
    BAD_TIME,
    MALFORMED,
    MISSING_FIELD,
    NS_PER_S,
    OVERSIZED,
    UNKNOWN_SERIES,
    Observation,
    Position,
    Rejection,
    SeriesKind,
)

TimeUnit = Literal["s", "ms", "us", "ns", "iso8601"]
PayloadFormat = Literal["json", "line_protocol"]
MissingTime = Literal["arrival", "reject"]
DuplicateKeys = Literal["reject", "last"]

EARLIEST_NS = 365 * 86_400 * NS_PER_S  # 1971-01-01T00:00:00Z
_BAD_SERIES_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")


MAX_PAYLOAD_BYTES = 1 << 20
MAX_SERIES_BYTES = 256


class Decoder:
    """Turns one source's raw events into observations, rejecting what cannot be used.

    Set up once per source; `decode` is the per-event path and does no lookups it could
    have done here.
    """

    def __init__(
        self,
        *,
        kind: SeriesKind,
        series_field: str,
        value_field: str | None,
        values_field: str | None = None,
        time_field: str = "ts",
        time_unit: TimeUnit | None = None,
        payload_format: PayloadFormat = "json",
        split_fields: bool = True,
        max_future_ns: int = 3600 * NS_PER_S,
        allowlist: frozenset[str] | None = None,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        max_series_bytes: int = MAX_SERIES_BYTES,
        missing_time: MissingTime | None = None,
        duplicate_keys: DuplicateKeys = "reject",
    ) -> None:
        line_protocol = payload_format == "line_protocol"
        if line_protocol and time_unit == "iso8601":
            raise ValueError(
                "time_unit iso8601 cannot read line protocol, whose timestamps are "
                "integers: use s, ms, us or ns"
            )
        self.kind = kind
        self.series_field = series_field
        self.value_field = value_field
        self.values_field = values_field
        self.time_field = time_field
        self.time_unit: TimeUnit = time_unit or ("ns" if line_protocol else "ms")
        self.payload_format = payload_format
        self.split_fields = split_fields
        self.max_future_ns = max_future_ns
        self.allowlist = allowlist
        self.max_payload_bytes = max_payload_bytes
        self.max_series_bytes = max_series_bytes
        self.missing_time: MissingTime = missing_time or ("arrival" if line_protocol else "reject")
        self.duplicate_keys = duplicate_keys
        self._reject_twins = duplicate_keys == "reject"
        # The per-event fast path (see decode) applies to JSON with a numeric time unit.
        self._fast = payload_format == "json" and self.time_unit != "iso8601"
        self._scale = NS_PER_UNIT.get(self.time_unit, 1)
        self._good_series: set[str] = set()

    def decode(
        self,
        raw: bytes,
        now_ns: int,
        position: Position | None = None,
        series: str | None = None,
    ) -> tuple[list[Observation], list[Rejection]]:
        """Observations in one payload, and rejections for what could not be used.

        `now_ns` is the time the payload arrived. `series` names the series when it comes
        from outside the payload (a Kafka key, an MQTT topic); otherwise the payload's
        series field does.
        """
        if len(raw) > self.max_payload_bytes:
            detail = f"{len(raw)} bytes; at most {self.max_payload_bytes} (max_payload_bytes)"
            return [], [Rejection(OVERSIZED, detail, raw, position)]
        try:
            if series is not None:
                self._check_series(series)
            if self.payload_format == "line_protocol":
                return self._decode_lines(raw, now_ns, position, series)
        except RejectError as exc:
            return [], [Rejection(exc.reason, exc.detail, raw, position)]
        try:
            if raw.startswith(b"\xef\xbb\xbf"):
                raise RejectError(MALFORMED, "a byte order mark before the payload")
            event = loads(raw)
            if not isinstance(event, dict):
                raise RejectError(MALFORMED, f"expected a JSON object, got {type(event).__name__}")
            # A payload with no more `:` than keys at the top has no twins (see below).
            if self._reject_twins and raw.count(b":") != len(event):
                twin = duplicate_key(raw, event)
                if twin is not None:
                    raise RejectError(MALFORMED, f"json: the key {shown(twin)} appears twice")
            time_value = event.get(self.time_field)
            if self._fast:
                fast = self._decode_fast(event, time_value, now_ns, position, series)
                if fast is not None:
                    return [fast], []
        except RejectError as exc:
            return [], [Rejection(exc.reason, exc.detail, raw, position)]
        except (ValueError, UnicodeDecodeError) as exc:
            return [], [Rejection(MALFORMED, f"json: {exc}", raw, position)]
        return self.decode_mapping(event, time_value, raw, now_ns, position, series, True)

    def _decode_lines(
        self, raw: bytes, now_ns: int, position: Position | None, series: str | None
    ) -> tuple[list[Observation], list[Rejection]]:
        """Each line of a line protocol payload on its own; a rejection's bytes are its
        line's, its detail starts with the line's number."""
        observations: list[Observation] = []
        rejections: list[Rejection] = []
        text = raw.decode("utf-8", "surrogateescape")
        for number, line, point, error in parse_lines(text, self.time_unit):
            if point is None:
                got: list[Rejection] = [Rejection(MALFORMED, f"line protocol: {error}", b"")]
            else:
                event = {**point.tags, **point.fields}
                found, got = self._mapping(
                    event, point.time, b"", now_ns, position, series, as_line_protocol_number
                )
                observations += found
            if got:
                line_raw = line.encode("utf-8", "surrogateescape")
                rejections += [
                    Rejection(r.reason, f"line {number}: {r.detail}", line_raw, position)
                    for r in got
                ]
        return observations, rejections

    def _decode_fast(
        self,
        event: dict[str, Any],
        time_value: Any,
        now_ns: int,
        position: Position | None,
        series: str | None,
    ) -> Observation | None:
        """The common well-formed event, checked without the general path's detours.

        None means "not this simple": the general path then decides, with its reasons.
        """
        sid = series if series is not None else event.get(self.series_field)
        value = event.get(self.value_field) if self.value_field is not None else None
        if type(sid) is not str or type(time_value) is not int:
            return None
        if not isinstance(value, (float, int)) or isinstance(value, bool):
            return None
        if self.values_field is not None and self.values_field in event:
            return None
        time_ns = time_value * self._scale
        try:
            number = float(value)
        except OverflowError:  # an integer beyond a float: the general path says so
            return None
        if not (EARLIEST_NS <= time_ns <= now_ns + self.max_future_ns and math.isfinite(number)):
            return None
        if sid not in self._good_series:
            try:
                self._check_series(sid)
            except RejectError:
                return None
            if len(self._good_series) < 1_000_000:
                self._good_series.add(sid)
        if self.allowlist is not None and sid not in self.allowlist:
            return None
        return Observation(sid, time_ns, number, self.kind, position)

    def decode_mapping(
        self,
        event: Mapping[str, Any],
        time_value: Any,
        raw: bytes,
        now_ns: int,
        position: Position | None = None,
        series: str | None = None,
        strict: bool = False,
    ) -> tuple[list[Observation], list[Rejection]]:
        """Like `decode`, for an event already read into a mapping (a CSV row, say).
        Numbers in strings follow JSON's grammar in a JSON payload; elsewhere (a CSV
        cell) the usual decimal forms, in ASCII digits."""
        number = as_json_number if strict else as_number
        return self._mapping(event, time_value, raw, now_ns, position, series, number)

    def _mapping(
        self,
        event: Mapping[str, Any],
        time_value: Any,
        raw: bytes,
        now_ns: int,
        position: Position | None,
        series: str | None,
        number: Callable[[Any, str], float],
    ) -> tuple[list[Observation], list[Rejection]]:
        try:
            base = series if series is not None else self._series(event)
            time_ns = self._time_ns(time_value, now_ns)
        except RejectError as exc:
            return [], [Rejection(exc.reason, exc.detail, raw, position)]
        observations: list[Observation] = []
        rejections: list[Rejection] = []
        values, problem = self._values(event)
        if problem is not None:
            rejections.append(Rejection(MALFORMED, problem, raw, position))
        for name, value in values:
            series_id = base if name is None else f"{base}/{name}"
            try:
                if name is not None:
                    self._check_series(series_id)
                self._check_allowed(base, series_id)
                got = number(value, name or self.value_field or "value")
            except RejectError as exc:
                rejections.append(Rejection(exc.reason, exc.detail, raw, position))
                continue
            observations.append(Observation(series_id, time_ns, got, self.kind, position))
        if not observations and not rejections:
            wanted = " or ".join(f"'{f}'" for f in (self.value_field, self.values_field) if f)
            rejections.append(
                Rejection(MISSING_FIELD, f"no value: expected {wanted}", raw, position)
            )
        return observations, rejections

    def needed_fields(self) -> tuple[str, ...]:
        """The fields no event can do without: its series, its value (when one field
        holds it) and its time (unless a missing one is taken as the arrival time). A
        file whose header lacks one of them can give nothing but rejections."""
        value = (self.value_field,) if self.value_field and not self.values_field else ()
        time = (self.time_field,) if self.missing_time == "reject" else ()
        return (self.series_field, *value, *time)

    def event_time_ns(self, event: Mapping[str, Any]) -> int | None:
        """The event time of a mapping, or None if it has none that can be read."""
        value = event.get(self.time_field)
        if value is None:
            return None
        try:
            return self._time_ns(value, now_ns=2**62)
        except RejectError:
            return None

    def _series(self, event: Mapping[str, Any]) -> str:
        value = event.get(self.series_field)
        if value is None or value == "":
            raise RejectError(MISSING_FIELD, f"no series id: expected field '{self.series_field}'")
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise RejectError(
                MALFORMED, f"series id '{self.series_field}' must be a string or integer"
            )
        text = str(value)
        self._check_series(text)
        return text

    def _check_series(self, text: str) -> None:
        """A series id must be non-empty, valid UTF-8 without control characters or
        backslashes (InfluxDB tags cannot hold them faithfully), and short enough."""
        if not text:
            raise RejectError(MISSING_FIELD, "an empty series id")
        if _BAD_SERIES_CHARS.search(text):
            raise RejectError(
                MALFORMED,
                f"series id {text[:40]!r} holds a control character or backslash, "
                "which InfluxDB tags cannot hold faithfully",
            )
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError:
            raise RejectError(
                MALFORMED, f"series id {text[:40]!r} is not valid UTF-8 (a lone surrogate)"
            ) from None
        if size > self.max_series_bytes:
            raise RejectError(
                MALFORMED,
                f"series id {text[:40]!r}... is {size} bytes; at most {self.max_series_bytes} "
                "(pipeline.max_series_id_bytes)",
            )

    def _values(self, event: Mapping[str, Any]) -> tuple[list[tuple[str | None, Any]], str | None]:
        """(field name, or None for the main value; raw value) pairs, and a problem if any."""
        found: list[tuple[str | None, Any]] = []
        if self.value_field is not None and self.value_field in event:
            found.append((None, event[self.value_field]))
        if not self.split_fields or self.values_field is None:
            return found, None
        if self.payload_format == "line_protocol":
            # Line protocol has no nested objects: every other field is a value of its own.
            skip = {self.series_field, self.value_field, self.time_field}
            found += [(k, v) for k, v in event.items() if k not in skip and not isinstance(v, str)]
            return found, None
        values = event.get(self.values_field)
        if values is None:
            return found, None
        if not isinstance(values, dict):
            return found, f"'{self.values_field}' must be an object of named values"
        return found + [(str(k), v) for k, v in values.items()], None

    def _check_allowed(self, base: str, series_id: str) -> None:
        if (
            self.allowlist is not None
            and base not in self.allowlist
            and series_id not in self.allowlist
        ):
            raise RejectError(UNKNOWN_SERIES, f"series {series_id!r} is not in series_allowlist")

    def _time_ns(self, value: Any, now_ns: int) -> int:
        if value is None:
            if self.missing_time == "arrival":
                return now_ns - now_ns % self._scale  # as the server: cut to the unit
            if self.payload_format == "line_protocol":
                raise RejectError(MISSING_FIELD, "no timestamp (fields.missing_time is reject)")
            raise RejectError(MISSING_FIELD, f"no event time: expected field '{self.time_field}'")
        time_ns = iso_ns(value) if self.time_unit == "iso8601" else epoch_ns(value, self.time_unit)
        if time_ns < EARLIEST_NS:
            raise RejectError(
                BAD_TIME,
                f"event time {shown(value)} is before 1971 as {self.time_unit}; check time_unit",
            )
        if time_ns > now_ns + self.max_future_ns:
            raise RejectError(
                BAD_TIME,
                f"event time {shown(value)} is more than max_future ahead of now as "
                f"{self.time_unit}; check time_unit and the producer's clock",
            )
        return time_ns
