"""InfluxDB line protocol: parse one line into its parts, and write lines.

    measurement[,tag=value...] field=value[,field=value...] [timestamp]

Measurements escape `,` and space with a backslash; tag keys, tag values and field keys
also escape `=`. String field values are double-quoted with `"` and `\\` escaped. Numbers
are floats, `5i` integers or `5u` unsigned; booleans are t/true/f/false in any case.

>>> line = parse_line('cpu,host=a\\\\ b load=0.5,n=3i 1700000000000000000')
>>> line.measurement, line.tags, line.fields, line.time
('cpu', {'host': 'a b'}, {'load': 0.5, 'n': 3}, 1700000000000000000)
>>> format_line('cpu', {'host': 'a b'}, {'load': 0.5}, 17)
'cpu,host=a\\\\ b load=0.5 17'
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

FieldValue = float | int | bool | str

_TRUE = {"t", "T", "true", "True", "TRUE"}
_FALSE = {"f", "F", "false", "False", "FALSE"}
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_INTEGER = re.compile(r"^[+-]?\d+[iu]$")


class LineProtocolError(ValueError):
    """A line that is not valid line protocol; the message says what and where."""


@dataclass(frozen=True, slots=True)
class Line:
    """One parsed line. `time` is None when the line has no timestamp."""

    measurement: str
    tags: dict[str, str]
    fields: dict[str, FieldValue]
    time: int | None


def _find(text: str, start: int, stops: str) -> int:
    """Index of the first unescaped character of stops at or after start (len if none)."""
    i = start
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char in stops:
            return i
        i += 1
    return len(text)


def _split(text: str, sep: str) -> list[str]:
    parts, start = [], 0
    while True:
        end = _find(text, start, sep)
        parts.append(text[start:end])
        if end >= len(text):
            return parts
        start = end + 1


def _string_end(text: str, start: int) -> int:
    """Index just past the closing quote of the string whose opening quote is at start."""
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text[i] == '"':
            return i + 1
        else:
            i += 1
    raise LineProtocolError(f"unterminated string at column {start + 1}")


def _parse_fields(line: str, start: int) -> tuple[dict[str, FieldValue], int]:
    """The field set starting at start, and the index where it ends."""
    fields: dict[str, FieldValue] = {}
    i = start
    while True:
        eq = _find(line, i, "=, ")
        if eq >= len(line) or line[eq] != "=" or eq == i:
            raise LineProtocolError(f"field {line[i : eq + 1]!r}: expected key=value")
        key = _unescape(line[i:eq])
        value_start = eq + 1
        if line.startswith('"', value_start):
            value_end = _string_end(line, value_start)
        else:
            value_end = _find(line, value_start, ", ")
        fields[key] = _field_value(line[value_start:value_end], key)
        if value_end >= len(line) or line[value_end] == " ":
            return fields, value_end
        if line[value_end] != ",":
            raise LineProtocolError(f"field {key!r}: unexpected {line[value_end]!r} after value")
        i = value_end + 1


_UNESCAPE = re.compile(r"\\([,= ])")


def _unescape(text: str) -> str:
    return _UNESCAPE.sub(r"\1", text)


def _field_value(raw: str, key: str) -> FieldValue:
    if raw.startswith('"'):
        if len(raw) < 2 or not raw.endswith('"'):
            raise LineProtocolError(f"field {key!r}: unterminated string")
        return re.sub(r'\\(["\\])', r"\1", raw[1:-1])
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    if _INTEGER.match(raw):
        return int(raw[:-1])
    if _NUMBER.match(raw):
        return float(raw)
    raise LineProtocolError(f"field {key!r}: {raw!r} is not a number, boolean or string")


def parse_line(line: str) -> Line:
    """Parse one line of line protocol; LineProtocolError says what is wrong."""
    line = line.strip(" \t\r\n")
    if not line or line.startswith("#"):
        raise LineProtocolError("empty line")
    key_end = _find(line, 0, " ")
    if key_end >= len(line):
        raise LineProtocolError("no fields: expected 'measurement field=value'")
    series_key = _split(line[:key_end], ",")
    measurement = _unescape(series_key[0])
    if not measurement:
        raise LineProtocolError("empty measurement name")
    tags: dict[str, str] = {}
    for pair in series_key[1:]:
        eq = _find(pair, 0, "=")
        key, value = _unescape(pair[:eq]), _unescape(pair[eq + 1 :])
        if eq >= len(pair) or not key or not value:
            raise LineProtocolError(f"tag {pair!r}: expected key=value")
        tags[key] = value
    fields, fields_end = _parse_fields(line, key_end + 1)
    rest = line[fields_end:].strip(" \t")
    time: int | None = None
    if rest:
        if not re.fullmatch(r"-?\d+", rest):
            raise LineProtocolError(f"timestamp {rest!r} is not an integer")
        time = int(rest)
    return Line(measurement, tags, fields, time)


_NAME_ESCAPES = str.maketrans({",": r"\,", " ": r"\ "})
_KEY_ESCAPES = str.maketrans({",": r"\,", " ": r"\ ", "=": r"\="})


def _format_value(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"line protocol cannot hold {value!r}")
        return repr(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_line(
    measurement: str, tags: Mapping[str, str], fields: Mapping[str, FieldValue], time: int
) -> str:
    """One line of line protocol, tags in the order given."""
    if not measurement or measurement.startswith("#"):
        raise ValueError(f"measurement {measurement!r} cannot be written: empty or starts with #")
    head = measurement.translate(_NAME_ESCAPES)
    for key, value in tags.items():
        head += f",{key.translate(_KEY_ESCAPES)}={value.translate(_KEY_ESCAPES)}"
    body = ",".join(
        f"{key.translate(_KEY_ESCAPES)}={_format_value(value)}" for key, value in fields.items()
    )
    return f"{head} {body} {time}"
