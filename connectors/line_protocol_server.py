"""The InfluxDB server's line protocol parser, ported function by function.

This is `models/points.go` of InfluxDB 2.7 (`parsePoint` and what it calls, the field
iterator that storage reads values with, and `strconv`'s number grammar, which is in
`connectors.go_numbers`), kept in the same shape and names so that the two can be read
side by side. It is the slow, exact path of `connectors.line_protocol`: lines that the
fast path does not recognise whole (escapes, quotes in names, odd numbers, errors) come
here. Positions are indices into the line, which is a `str` decoded with
`errors="surrogateescape"`: every character the scan looks for is ASCII, so it finds
what the server finds in the bytes.

Two kinds of "escaped" meet in the server's code and are kept apart here: the field
scan skips a backslash and the character after it, while the other scans treat a
character as escaped when a backslash precedes it (so `\\\\=` is an escaped `=` to one
and not to the other).
"""

from __future__ import annotations

import re
from itertools import pairwise

from connectors.go_numbers import go_float, go_int

FieldValue = float | int | bool | str

MAX_KEY_LENGTH = 65_535  # bytes of measurement and tags (with a field key: + 4 + its own)
_RESERVED_TAG_KEYS = frozenset({"\udcff", "\x00", "_field", "_measurement", "time"})
_TAG_KEY, _TAG_VALUE, _FIELDS = range(3)


class LineProtocolError(ValueError):
    """A line that is not valid line protocol; the message says what is wrong."""


class Unsigned(int):
    """An unsigned (`5u`) field value: an int that remembers how it was written."""

    __slots__ = ()


def parse_point(buf: str) -> tuple[str, dict[str, str], list[tuple[str, FieldValue]], str | None]:
    """Measurement, tags, (field, value) pairs in order, and the timestamp's digits (None
    without one) of a line that starts with no blank and is not a comment."""
    pos, key = _scan_key(buf)
    if not key:
        raise LineProtocolError("missing measurement")
    if _size(key) > MAX_KEY_LENGTH:
        raise LineProtocolError(f"max key length exceeded: {_size(key)} > {MAX_KEY_LENGTH}")
    fields_start = _skip_whitespace(buf, pos)
    fields_end = _scan_fields(buf, fields_start)
    _walk_fields(buf, fields_start, fields_end, _size(key))
    pos, stamp = _scan_time(buf, fields_end)
    if stamp and buf[pos:].strip(" "):
        raise LineProtocolError("point is invalid")
    measurement = _unescape(key[: _scan_to(key, 0, ",", len(key))])
    pairs = _field_pairs(buf, fields_start, fields_end)
    return measurement, _walk_tags(key), pairs, stamp or None


def _size(text: str) -> int:
    """Length in bytes, as the server counts."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogateescape"))


def _skip_whitespace(buf: str, i: int) -> int:
    while i < len(buf) and buf[i] in " \t\x00":
        i += 1
    return i


def _scan_to(buf: str, i: int, stop: str, end: int) -> int:
    """Index of the first `stop` at or after i, before end, not preceded by a backslash
    (end if none). The character at i counts as the start of a slice in the server's
    code; it is never preceded by a backslash where this is called."""
    j = buf.find(stop, i, end)
    while j > 0 and buf[j - 1] == "\\":
        j = buf.find(stop, j + 1, end)
    return end if j < 0 else j


def _scan_key(buf: str) -> tuple[int, str]:
    """scanKey: the end of the measurement and tags, and their text. The server sorts
    the tags in its key; their set (all this needs) is the same."""
    state, i = _scan_measurement(buf, 0)
    starts: list[int] = []
    if state == _TAG_KEY:
        i, starts = _scan_tags(buf, i)
    keys = [buf[start : _scan_to(buf, start, "=", end - 1)] for start, end in pairwise(starts)]
    for key in keys:
        if key in _RESERVED_TAG_KEYS:
            raise LineProtocolError(f"cannot use reserved tag key {key!r}")
    if len(set(keys)) != len(keys):
        raise LineProtocolError("duplicate tags")
    return i, buf[:i]


def _scan_measurement(buf: str, i: int) -> tuple[int, int]:
    if i >= len(buf) or buf[i] == ",":
        raise LineProtocolError("missing measurement")
    while True:
        i += 1
        if i >= len(buf):
            raise LineProtocolError("missing fields")
        if buf[i - 1] == "\\":
            continue
        if buf[i] == ",":
            return _TAG_KEY, i + 1
        if buf[i] == " ":
            return _FIELDS, i


def _scan_tags(buf: str, i: int) -> tuple[int, list[int]]:
    """The end of the tags (the space before the fields), and where each tag starts,
    with one more entry just past that space."""
    starts: list[int] = []
    state = _TAG_KEY
    while True:
        if state == _TAG_KEY:
            starts.append(i)
            i = _scan_tags_key(buf, i)
            state = _TAG_VALUE
        elif state == _TAG_VALUE:
            state, i = _scan_tags_value(buf, i)
        else:
            starts.append(i + 1)
            return i, starts


def _scan_tags_key(buf: str, i: int) -> int:
    if i >= len(buf) or buf[i] in " ,=":
        raise LineProtocolError("missing tag key")
    while True:
        i += 1
        if i >= len(buf) or (buf[i] in " ," and buf[i - 1] != "\\"):
            raise LineProtocolError("missing tag value")
        if buf[i] == "=" and buf[i - 1] != "\\":
            return i + 1


def _scan_tags_value(buf: str, i: int) -> tuple[int, int]:
    if i >= len(buf) or buf[i] in ", ":
        raise LineProtocolError("missing tag value")
    while True:
        i += 1
        if i >= len(buf):
            raise LineProtocolError("missing fields")
        if buf[i - 1] == "\\":
            continue
        if buf[i] == "=":
            raise LineProtocolError("invalid tag format")
        if buf[i] == ",":
            return _TAG_KEY, i + 1
        if buf[i] == " ":
            return _FIELDS, i


def _scan_fields(buf: str, i: int) -> int:
    """scanFields from i (after the blanks): the end of the field set."""
    n = len(buf)
    quoted = False
    equals = commas = 0
    while i < n:
        char = buf[i]
        if char == "\\" and i + 1 < n:
            i += 2
            continue
        if char == '"' and equals > commas:
            quoted = not quoted
            i += 1
            continue
        if char == "=" and not quoted:
            equals += 1
            if buf[i - 1] in " ," and buf[i - 2] != "\\":
                raise LineProtocolError("missing field key")
            if i + 1 >= n or buf[i + 1] in ", ":
                raise LineProtocolError("missing field value")
            if buf[i + 1] in "0123456789.-Nn":
                i = _scan_number(buf, i + 1)
                continue
            if buf[i + 1] != '"':
                i = _scan_boolean(buf, i + 1)
                continue
        if char == "," and not quoted:
            commas += 1
        if char == " " and not quoted:
            break
        i += 1
    if quoted:
        raise LineProtocolError("unbalanced quotes")
    if equals == 0 or commas != equals - 1:
        raise LineProtocolError("invalid field format")
    return i


def _scan_number(buf: str, i: int) -> int:
    start, n = i, len(buf)
    is_int = is_unsigned = decimal = scientific = False
    if buf[i] == "-":
        i += 1
        if i == n:
            raise LineProtocolError("invalid number")
    while i < n and buf[i] not in ", ":
        char = buf[i]
        if char in "iu" and i > start and not (is_int or is_unsigned):
            is_int, is_unsigned = char == "i", char == "u"
            i += 1
            continue
        if char == ".":
            if decimal:
                raise LineProtocolError("invalid number")
            decimal = True
        if i > start and char in "eE":
            scientific = True
            i += 1
            continue
        if char in "+-" and buf[i - 1] in "eE":
            i += 1
            continue
        if (i + 2 < n and char in "Nn") or char not in "0123456789.":
            raise LineProtocolError("invalid number")
        i += 1
    if (is_int or is_unsigned) and (decimal or scientific):
        raise LineProtocolError("invalid number")
    digits = i - start - is_int - decimal - (buf[start] == "-")
    if digits == 0:
        raise LineProtocolError("invalid number")
    text = buf[start:i]
    if is_int or is_unsigned:
        if buf[i - 1] != ("i" if is_int else "u") or (is_unsigned and buf[start] == "-"):
            raise LineProtocolError("invalid number")
        if go_int(text[:-1], signed=is_int) is None:
            kind = "integer" if is_int else "unsigned"
            raise LineProtocolError(f"unable to parse {kind} {text[:-1]}: out of range")
    elif scientific or len(text) >= 25:
        try:
            go_float(text)
        except ValueError:
            raise LineProtocolError("invalid float") from None
    return i


def _scan_boolean(buf: str, i: int) -> int:
    start, n = i, len(buf)
    if buf[i] not in "tTfF":
        raise LineProtocolError("invalid boolean")
    i += 1
    while i < n and buf[i] not in ", ":
        i += 1
    if i - start > 1 and buf[start:i] not in ("true", "True", "TRUE", "false", "False", "FALSE"):
        raise LineProtocolError("invalid boolean")
    return i


def _scan_time(buf: str, i: int) -> tuple[int, str]:
    start = i = _skip_whitespace(buf, i)
    while i < len(buf) and buf[i] not in "\n ":
        if not ("0" <= buf[i] <= "9" or (i == start and buf[i] == "-")):
            raise LineProtocolError("bad timestamp")
        i += 1
    return i, buf[start:i]


def _scan_field_value(buf: str, i: int, end: int) -> int:
    quoted = False
    while i < end:
        char = buf[i]
        if char == "\\" and i + 1 < end and buf[i + 1] in '"\\':
            i += 2
            continue
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            break
        i += 1
    return i


def _walk_fields(buf: str, i: int, end: int, key_size: int) -> None:
    """walkFields as parsePoint runs it: every field has a value; keys fit the limit."""
    while i < end:
        eq = _scan_to(buf, i, "=", end)
        if eq > end - 2:
            raise LineProtocolError(f"invalid value: field-key={buf[i:eq]}")
        value_end = _scan_field_value(buf, eq + 1, end)
        size = key_size + 4 + _size(buf[i:eq])
        if size > MAX_KEY_LENGTH:
            raise LineProtocolError(f"max key length exceeded: {size} > {MAX_KEY_LENGTH}")
        i = value_end + 1


def _walk_tags(key: str) -> dict[str, str]:
    n = len(key)
    i = _scan_to(key, 0, ",", n)
    if i == 0:
        return {}
    escaped = "\\" in key
    tags: dict[str, str] = {}
    i += 1
    while i < n:
        eq = _scan_to(key, i, "=", n)
        name = key[i:eq]
        i = eq + 1
        while i < n and not (key[i] == "," and key[i - 1] != "\\"):
            i += 1
        value = key[eq + 1 : i]
        if not value:
            continue
        if escaped:
            name, value = _unescape_tag(name), _unescape_tag(value)
        tags[name] = value
        i += 1
    return tags


def _field_pairs(buf: str, i: int, end: int) -> list[tuple[str, FieldValue]]:
    """The fields as storage reads them (the server's field iterator), in order."""
    pairs: list[tuple[str, FieldValue]] = []
    while i < end:
        eq = _scan_to(buf, i, "=", end)
        key = _unescape(buf[i:eq])
        value_end = _scan_field_value(buf, eq + 1, end)
        pairs.append((key, _field_value(buf[eq + 1 : value_end], key)))
        i = value_end + 1
    return pairs


def _field_value(raw: str, key: str) -> FieldValue:
    if not raw:
        raise LineProtocolError(f"unknown field type for {key}")
    if raw[0] == '"':
        if len(raw) < 2:
            raise LineProtocolError(f"field {key}: a lone quote")
        inner = raw[1:-1]
        if not raw[-1].isascii():  # the server drops the last byte, not the last character
            inner += (
                raw[-1].encode("utf-8", "surrogateescape")[:-1].decode("utf-8", "surrogateescape")
            )
        return _STRING_ESCAPE.sub(r"\1", inner)
    if raw[0] in "0123456789-.nNiIu":
        if raw[-1] in "iu":
            number = go_int(raw[:-1], signed=raw[-1] == "i")
            if number is None:
                raise LineProtocolError(f"unable to parse integer value {raw!r}")
            return number if raw[-1] == "i" else Unsigned(number)
        try:
            return go_float(raw)
        except ValueError:
            raise LineProtocolError(f"unable to parse floating point value {raw!r}") from None
    if raw in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if raw in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise LineProtocolError(f"unable to parse bool value {raw!r}")


_ESCAPE = re.compile(r'\\([," =])')
_STRING_ESCAPE = re.compile(r'\\(["\\])')


def _unescape(text: str) -> str:
    """escape.Unescape: a backslash before `,`, `"`, space or `=` is dropped."""
    return _ESCAPE.sub(r"\1", text) if "\\" in text else text


def _unescape_tag(text: str) -> str:
    """unescapeTag: `\\,`, `\\ ` and `\\=` in turn."""
    return text.replace("\\,", ",").replace("\\ ", " ").replace("\\=", "=")
