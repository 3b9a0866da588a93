"""InfluxDB line protocol, read as the InfluxDB server reads it, and written.

    measurement[,tag=value...] field=value[,field=value...] [timestamp]

A payload holds many lines. `parse_lines` reads each one on its own and says, line by
line, what the server would store or why it would refuse it; blank lines and comments
(`#`) are skipped. The rules are the server's own (InfluxDB 2.7, `models/points.go`),
quirks included, and `tests/data/line_protocol_vectors.jsonl` holds thousands of cases
with the verdicts of the server's parser that the tests check this module against:

- a newline ends a line unless it is inside a quoted string field value, or follows a
  backslash;
- spaces, tabs and NUL bytes before a line, between the tags and the fields and before
  the timestamp are skipped; after the timestamp only spaces may follow (so a line
  ending in `\\r` is refused);
- floats are `[-]digits[.digits][e[+-]digits]` (no `+`, no `inf` or `nan`) and must be
  finite; `5i` is an int64 and `5u` a uint64 (no `-1u`), both in range; booleans are
  t, T, true, True, TRUE and f, F, false, False, FALSE; anything else is refused;
- the timestamp is an integer of the precision's unit whose time in ns lies within
  int64, bar the lowest two values and the highest one; without one, the server uses
  the time the line arrived;
- a tag value may not hold an unescaped `=`; a tag key may not repeat, nor be `time`,
  `_field` or `_measurement`; control characters are plain characters;
- a backslash escapes `,`, space and `=` in names (and `"` in measurement and field
  names); before any other character it is kept as it is;
- of a field given twice the last value is stored, but two types for one field refuse
  the line (a field type conflict); a field named `time` is not stored.

Unsigned values are `Unsigned` (an int), so that a line written back keeps its type.

>>> line = parse_line('cpu,host=a\\\\ b load=0.5,n=3i 1700000000000000000')
>>> line.measurement, line.tags, line.fields, line.time
('cpu', {'host': 'a b'}, {'load': 0.5, 'n': 3}, 1700000000000000000)
>>> [(p.number, p.error) for p in parse_lines('# a comment\\ncpu v=1\\ncpu v=+1\\n')]
[(2, None), (3, 'invalid boolean')]
>>> format_line('cpu', {'host': 'a b'}, {'load': 0.5}, 17)
'cpu,host=a\\\\ b load=0.5 17'
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from connectors.line_protocol_server import FieldValue, LineProtocolError, Unsigned, parse_point

__all__ = [
    "FieldValue",
    "Line",
    "LineProtocolError",
    "ParsedLine",
    "Unsigned",
    "format_line",
    "parse_line",
    "parse_lines",
]


@dataclass(frozen=True, slots=True)
class Line:
    """One line as the server stores it. `time` is the timestamp as written (in the
    precision's unit), or None when the line has none."""

    measurement: str
    tags: dict[str, str]
    fields: dict[str, FieldValue]
    time: int | None


class ParsedLine(NamedTuple):
    """One line of a payload: the number of the line it starts on (from 1), its text,
    and either the point or, in the server's words, why the server refuses it."""

    number: int
    text: str
    point: Line | None
    error: str | None


# Nanoseconds per unit of each precision the server accepts.
PRECISIONS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
# The times the server can store: int64 ns, bar the two lowest and the highest value.
MIN_TIME_NS = -(2**63) + 2
MAX_TIME_NS = 2**63 - 2

# The common line, recognised whole by one regular expression: names without escapes,
# quotes, spaces, commas, equals signs or control characters; string values without
# backslashes or quotes. Everything else takes the server's own scan (slower, exact).
_NAME = r'[^\x00-\x20,="\\\x7f]+'
_VALUE = (
    r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|-?[0-9]+i|[0-9]+u"
    r'|t|T|true|True|TRUE|f|F|false|False|FALSE|"[^"\\]*"'
)
_SIMPLE = re.compile(
    rf"({_NAME})((?:,{_NAME}={_NAME})*) [ \t\x00]*"
    rf"({_NAME}=(?:{_VALUE})(?:,{_NAME}=(?:{_VALUE}))*)"
    r"(?: [ \t\x00]*(-?[0-9]+)? *)?"
)
_SIMPLE_FIELD = re.compile(rf"({_NAME})=({_VALUE})(?:,|\Z)")
_SIMPLE_MAX = 16_383  # characters: a key of these cannot pass the server's 64 KiB limit
_RESERVED_TAGS = frozenset({"time", "_field", "_measurement", "\x00", "\udcff"})
_TRUE = frozenset({"t", "T", "true", "True", "TRUE"})
_SKIP = " \t\x00"


def parse_lines(text: str, precision: str = "ns") -> list[ParsedLine]:
    """Every line of a payload that is not blank or a comment, parsed on its own.

    `text` is the payload decoded with `errors="surrogateescape"`, so that bytes which
    are not UTF-8 stay what they were (the server takes them as they are).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    scale = PRECISIONS[precision]
    parsed = []
    for number, line in _split(text):
        try:
            point = _parse(line, scale)
        except LineProtocolError as exc:
            parsed.append(ParsedLine(number, line, None, str(exc)))
        else:
            parsed.append(ParsedLine(number, line, point, None))
    return parsed


def parse_line(line: str, precision: str = "ns") -> Line:
    """Parse one line of line protocol; LineProtocolError says what is wrong."""
    parsed = parse_lines(line, precision)
    if len(parsed) != 1:
        raise LineProtocolError("empty line" if not parsed else "more than one line")
    if parsed[0].point is None:
        raise LineProtocolError(parsed[0].error)
    return parsed[0].point


def _split(text: str) -> list[tuple[int, str]]:
    """(line number, line) for each line that is not blank or a comment, split where
    the server splits: at a newline outside quotes that no backslash escapes."""
    if '"' in text:
        blocks = _scan_lines(text)
    elif "\\\n" in text:  # without quotes, only backslashes before a newline matter
        blocks = _split_escaped(text)
    else:
        blocks = list(enumerate(text.split("\n"), 1))
    lines = []
    for number, block in blocks:
        line = block.lstrip(_SKIP)
        if not line or line[0] == "#":
            continue
        lines.append((number, line[:-1] if line[-1] == "\n" else line))
    return lines


_LINE_SPECIAL = re.compile(r'[\\ =,"\n]')
# A newline after an even run of backslashes (none included) ends a line: the server
# skips a backslash and the character after it, so an odd run escapes the newline.
_LINE_END = re.compile(r"(?<!\\)(?:\\\\)*\n")


def _split_escaped(text: str) -> list[tuple[int, str]]:
    """scanLine for a payload without quotes: split at the newlines no backslash escapes."""
    blocks, start, number = [], 0, 1
    for match in _LINE_END.finditer(text):
        block = text[start : match.end() - 1]
        blocks.append((number, block))
        number += block.count("\n") + 1
        start = match.end()
    blocks.append((number, text[start:]))
    return blocks


def _scan_lines(text: str) -> list[tuple[int, str]]:
    """The server's scanLine over a whole payload, with each block's line number."""
    blocks, pos, number, end = [], 0, 1, len(text)
    while pos < end:
        start, i = pos, pos
        quoted = fields = False
        equals = commas = 0
        while True:
            match = _LINE_SPECIAL.search(text, i)
            if match is None:
                i = end
                break
            i = match.start()
            char = text[i]
            if char == "\\" and i + 2 < end:
                i += 2
                continue
            if char == " ":
                fields = True
            if fields:
                if not quoted and char == "=":
                    equals += 1
                    i += 1
                    continue
                if not quoted and char == ",":
                    commas += 1
                    i += 1
                    continue
                if char == '"' and equals > commas:
                    quoted = not quoted
                    i += 1
                    continue
            if char == "\n" and not quoted:
                break
            i += 1
        block = text[start:i]
        blocks.append((number, block))
        number += block.count("\n") + 1
        pos = i + 1
    return blocks


def _parse(line: str, scale: int) -> Line:
    """One line (leading blanks skipped, not a comment) as the server stores it."""
    match = _SIMPLE.fullmatch(line) if len(line) <= _SIMPLE_MAX else None
    if match is None:
        measurement, tags, pairs, stamp = parse_point(line)
    else:
        measurement, tag_text, field_text, stamp = match.groups()
        tags = {}
        for pair in tag_text[1:].split(",") if tag_text else ():
            key, value = pair.split("=")
            if key in _RESERVED_TAGS:
                raise LineProtocolError(f"cannot use reserved tag key {key!r}")
            if key in tags:
                raise LineProtocolError("duplicate tags")
            tags[key] = value
        pairs = [(key, _simple_value(raw)) for key, raw in _SIMPLE_FIELD.findall(field_text)]
    return Line(measurement, tags, _stored_fields(pairs), _time(stamp, scale))


def _simple_value(raw: str) -> FieldValue:
    last = raw[-1]
    if raw[0] == '"':
        return raw[1:-1]
    if last == "i":
        value = int(raw[:-1])
        if not -(2**63) <= value < 2**63:
            raise LineProtocolError(f"unable to parse integer {raw[:-1]}: value out of range")
        return value
    if last == "u":
        unsigned = Unsigned(raw[:-1])
        if unsigned >= 2**64:
            raise LineProtocolError(f"unable to parse unsigned {raw[:-1]}: value out of range")
        return unsigned
    if raw[0] in "tTfF":
        return raw in _TRUE
    number = float(raw)
    if math.isinf(number):
        raise LineProtocolError("invalid float")
    return number


def _stored_fields(pairs: list[tuple[str, FieldValue]]) -> dict[str, FieldValue]:
    """The fields the server's storage keeps: the last value of a repeated field, none
    named `time`; two types for one field refuse the line."""
    fields: dict[str, FieldValue] = {}
    for key, value in pairs:
        if key == "time":
            continue
        if key in fields and type(fields[key]) is not type(value):
            raise LineProtocolError(f"field type conflict: input field {key!r} has two types")
        fields[key] = value
    if not fields:
        raise LineProtocolError('invalid field name: input field "time" is invalid')
    return fields


def _time(stamp: str | None, scale: int) -> int | None:
    if not stamp:
        return None
    try:
        time = int(stamp)
    except ValueError:
        raise LineProtocolError(f"unable to parse timestamp {stamp!r}") from None
    if not -(2**63) <= time < 2**63:
        raise LineProtocolError(f"unable to parse timestamp {stamp}: value out of range")
    if not MIN_TIME_NS <= time * scale <= MAX_TIME_NS:
        raise LineProtocolError(f"time outside range {MIN_TIME_NS} - {MAX_TIME_NS}")
    return time


_NAME_ESCAPES = str.maketrans({",": r"\,", " ": r"\ "})
_KEY_ESCAPES = str.maketrans({",": r"\,", " ": r"\ ", "=": r"\="})


def _format_value(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Unsigned):
        return f"{value}u"
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
