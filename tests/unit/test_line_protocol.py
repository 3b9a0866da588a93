"""Line protocol read as the InfluxDB server reads it, checked against the verdicts of the
server's own parser (tests/data/line_protocol_vectors.jsonl, made by
scripts/line_protocol_reference/regenerate.sh), and written back."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors import line_protocol
from connectors.line_protocol import (
    PRECISIONS,
    Line,
    LineProtocolError,
    Unsigned,
    format_line,
    parse_line,
    parse_lines,
)
from connectors.line_protocol_server import parse_point

VECTORS = Path(__file__).parents[1] / "data" / "line_protocol_vectors.jsonl"
TYPES = {bool: "boolean", Unsigned: "unsigned", int: "integer", float: "float", str: "string"}


# --- the server's verdicts ---------------------------------------------------------------


def _text(value: str | dict[str, str]) -> str:
    """A string of the vectors: itself, or bytes that are not UTF-8 given in hex."""
    if isinstance(value, dict):
        return bytes.fromhex(value["hex"]).decode("utf-8", "surrogateescape")
    return value


def _stored(fields: list[list[Any]]) -> dict[str, tuple[str, Any]]:
    """The reference's fields (in order, as storage reads them) as storage keeps them."""
    kept: dict[str, tuple[str, Any]] = {}
    for key, kind, value in fields:
        if _text(key) != "time":
            if kind == "float":
                value = float(value)
            elif kind == "string":
                value = _text(value)
            kept[_text(key)] = (kind, value)
    return kept


def _same(ours: object, theirs: object) -> bool:
    if isinstance(ours, float) and isinstance(theirs, float):
        if math.isnan(ours) or math.isnan(theirs):
            return math.isnan(ours) and math.isnan(theirs)
        return ours == theirs and math.copysign(1, ours) == math.copysign(1, theirs)
    return ours == theirs


def _differences(case: dict[str, Any]) -> list[str]:
    text = _text(case["text"] if "text" in case else {"hex": case["hex"]})
    precision = case.get("precision", "ns")
    ours, theirs = parse_lines(text, precision), case["lines"]
    if [p.number for p in ours] != [v["line"] for v in theirs]:
        return [f"lines {[p.number for p in ours]}, server {[v['line'] for v in theirs]}"]
    found = []
    for parsed, verdict in zip(ours, theirs, strict=True):
        point, expected = parsed.point, verdict.get("point")
        if point is None or expected is None:
            if (point is None) != (expected is None):
                found.append(f"line {parsed.number}: {parsed.error or point}, server {verdict}")
            continue
        fields = {key: (TYPES[type(v)], v) for key, v in point.fields.items()}
        want = _stored(expected["fields"])
        time = None if point.time is None else point.time * PRECISIONS[precision]
        if (
            point.measurement != _text(expected["measurement"])
            or point.tags != {_text(k): _text(v) for k, v in expected["tags"]}
            or fields.keys() != want.keys()
            or any(fields[k][0] != want[k][0] or not _same(fields[k][1], want[k][1]) for k in want)
            or time != expected["time"]
        ):
            found.append(f"line {parsed.number}: {point}, server {expected}")
    return found


def test_every_reference_case_gets_the_servers_verdict_and_values() -> None:
    cases = [json.loads(row) for row in VECTORS.read_text().splitlines()]
    assert len(cases) >= 5_000
    assert sum(len(case["lines"]) for case in cases) >= 6_000
    wrong = {case["id"]: found for case in cases if (found := _differences(case))}
    assert not wrong, f"{len(wrong)} cases differ, e.g. {list(wrong.items())[:5]}"


# --- the grammar points, one by one (the vectors hold each of these too) ----------------


@pytest.mark.parametrize(
    ("line", "fields"),
    [
        ("cpu  v=1", {"v": 1.0}),  # more than one space between sections
        ("cpu \tv=1 \t1", {"v": 1.0}),
        ("c\x01pu,t=a\x02 v\x03=1", {"v\x03": 1.0}),  # control characters are plain
        ("cpu v=1.,w=.5,x=-.5,y=1.e2", {"v": 1.0, "w": 0.5, "x": -0.5, "y": 100.0}),
        ("cpu v=-0", {"v": -0.0}),
        ("cpu v=9223372036854775807i,w=-9223372036854775808i", {"v": 2**63 - 1, "w": -(2**63)}),
        ("cpu v=18446744073709551615u", {"v": 2**64 - 1}),
        ("cpu v=1.7976931348623157e308", {"v": 1.7976931348623157e308}),
        ("cpu v=1e-400", {"v": 0.0}),  # underflow is zero, not an error
        ("cpu v=1,v=2", {"v": 2.0}),  # a field given twice: the last value is stored
        ("cpu time=1,v=2", {"v": 2.0}),  # a field named time is not stored
        ('cpu v="a\\"b\\\\c\\d"', {"v": 'a"b\\c\\d'}),
        ('cpu v="a"b', {"v": 'a"'}),  # the server's own reading of a stray character
        ("cpu v\\=w\\ x\\,y\\z=1", {"v=w x,y\\z": 1.0}),  # `\z` keeps its backslash
        ("cpu v=t,w=False", {"v": True, "w": False}),
    ],
)
def test_the_server_accepts(line: str, fields: dict[str, object]) -> None:
    point = parse_line(line)
    assert point.fields.keys() == fields.keys()
    for key, value in fields.items():
        assert type(point.fields[key]) is type(value) or isinstance(value, int)
        assert _same(point.fields[key], value)


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("cpu v=+1", "invalid boolean"),  # no leading +
        ("cpu v=1 +1", "bad timestamp"),
        ("cpu v=-1u", "invalid number"),
        ("cpu v=9223372036854775808i", "unable to parse integer"),
        ("cpu v=18446744073709551616u", "unable to parse unsigned"),
        ("cpu v=1e309", "invalid float"),  # would overflow to inf
        ("cpu v=" + "9" * 309, "invalid float"),
        ("cpu v=NaN", "invalid number"),
        ("cpu v=inf", "invalid boolean"),
        ("cpu v=1 9223372036854775807", "time outside range"),  # int64's last value
        ("cpu v=1 -9223372036854775807", "time outside range"),
        ("cpu v=1 9223372036854775808", "out of range"),  # beyond int64
        ("cpu,t=a=b v=1", "invalid tag format"),  # an unescaped = in a tag value
        ("cpu,t=a,t=b v=1", "duplicate tags"),
        ("cpu,b=1,a=2,b=3 v=1", "duplicate tags"),
        ("cpu,time=1 v=1", "reserved tag key"),
        ("cpu v=1,v=2i", "field type conflict"),
        ("cpu time=1", "invalid field name"),
        ("cpu v=1 5\r", "bad timestamp"),  # a line ending in CR
        ("cpu v=1 5 \t", "point is invalid"),
        ("cpu a\\\\=1", "invalid value"),  # `\\=` hides the `=` from one of the scans
        ("cpu", "missing fields"),
        ('cpu s="open', "unbalanced quotes"),
        (",host=a load=1", "missing measurement"),
    ],
)
def test_the_server_refuses(line: str, error: str) -> None:
    with pytest.raises(LineProtocolError, match=error):
        parse_line(line)


def test_a_series_key_may_hold_64_kib_in_bytes_with_each_field_key() -> None:
    # measurement and tags, plus 4, plus the field key: at most 65,535 bytes
    assert parse_line("m,t=" + "a" * 65_511 + " " + "f" * 16 + "=1").fields
    for line in (
        "m,t=" + "a" * 65_511 + " " + "f" * 17 + "=1",
        "m,t=" + "a" * 65_532 + " v=1",
        "m,t=" + "\u00e9" * 32_766 + " v=1",  # two bytes each
    ):
        with pytest.raises(LineProtocolError, match="max key length exceeded"):
            parse_line(line)


def test_a_timestamp_is_checked_in_its_precision() -> None:
    assert parse_line("cpu v=1 9223372036", "s").time == 9223372036
    with pytest.raises(LineProtocolError, match="time outside range"):
        parse_line("cpu v=1 9223372037", "s")


def test_a_payload_is_split_where_the_server_splits_it() -> None:
    text = (
        "# header\n"
        "\n"
        'cpu s="two\nlines",v=1 1\n'  # a newline inside a quoted string value
        "cpu v=2\\\n"  # a backslash before a newline joins the lines
        ",v=3 2\n"
        "   \t\n"
        "bad line\n"
        "cpu v=4 3"
    )
    parsed = parse_lines(text)
    assert [(p.number, p.error) for p in parsed] == [
        (3, None),
        (5, "invalid number"),
        (8, "invalid field format"),
        (9, None),
    ]
    assert parsed[0].point == Line("cpu", {}, {"s": "two\nlines", "v": 1.0}, 1)
    assert parsed[-1].text == "cpu v=4 3"


def test_comments_and_blank_lines_are_nothing() -> None:
    assert parse_lines("# a\n\n  \t\n#b") == []
    assert parse_lines("") == []
    with pytest.raises(LineProtocolError, match="empty line"):
        parse_line("# only a comment")


# --- properties ---------------------------------------------------------------------------

# Names may hold anything InfluxDB stores faithfully: no control characters, and no
# backslash (the server keeps it as it is, so `a\` before a comma would be ambiguous).
names = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\\"),
    min_size=1,
    max_size=12,
)
field_values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**63), 2**63 - 1),
    st.integers(0, 2**64 - 1).map(Unsigned),
    st.booleans(),
    st.text(st.characters(blacklist_categories=("Cs", "Cn")), max_size=12),
)
tag_keys = names.filter(lambda name: name not in ("time", "_field", "_measurement"))


@given(
    names.filter(lambda name: not name.startswith("#")),
    st.dictionaries(tag_keys, names, max_size=3),
    st.dictionaries(names.filter(lambda name: name != "time"), field_values, min_size=1),
    st.integers(-(2**63) + 2, 2**63 - 2),
)
def test_a_formatted_line_parses_back_to_the_same_point(
    measurement: str, tags: dict[str, str], fields: dict[str, object], time: int
) -> None:
    line = parse_line(format_line(measurement, tags, fields, time))  # type: ignore[arg-type]
    assert (line.measurement, line.tags, line.time) == (measurement, tags, time)
    assert line.fields.keys() == fields.keys()
    for key, value in fields.items():
        assert type(line.fields[key]) is type(value)
        assert _same(line.fields[key], value)


characters = st.sampled_from(list('ab0189.-+eiutfTFN"\\,= \t\n#\x00\udcff\u00e9'))


@settings(max_examples=300)
@given(st.text(characters, max_size=60) | st.text(max_size=60))
def test_any_text_is_read_line_by_line_and_never_raises(text: str) -> None:
    for parsed in parse_lines(text):
        assert (parsed.point is None) != (parsed.error is None)
        assert parsed.number >= 1


def _fast_and_exact(line: str) -> tuple[object, object]:
    """The fast path's reading of a line it recognises, and the server's scan of it."""

    def read(parse: Any) -> object:
        try:
            return parse()
        except LineProtocolError:
            return "refused"

    def exact() -> Line:
        measurement, tags, pairs, stamp = parse_point(line)
        fields = line_protocol._stored_fields(pairs)
        return Line(measurement, tags, fields, line_protocol._time(stamp, 1))

    return read(lambda: line_protocol._parse(line, 1)), read(exact)


simple_names = st.text(st.sampled_from(list("abcxyz_09")), min_size=1, max_size=4)
simple_values = st.sampled_from(
    ["1", "-1.5", ".5", "5.", "1e5", "1E-5", "1e400", "7i", "-7i", "9223372036854775808i",
     "3u", "18446744073709551616u", "t", "FALSE", '"x"', '""', '"a,b c=d"']
)  # fmt: skip


@given(
    simple_names,
    st.lists(st.tuples(simple_names, simple_names), max_size=3),
    st.lists(st.tuples(simple_names, simple_values), min_size=1, max_size=4),
    st.sampled_from(["", " 1", "  -5", " 9223372036854775807", " 1 "]),
)
def test_the_fast_path_reads_what_the_servers_scan_reads(
    measurement: str, tags: list[tuple[str, str]], fields: list[tuple[str, str]], time: str
) -> None:
    line = measurement + "".join(f",{k}={v}" for k, v in tags) + " "
    line += ",".join(f"{k}={v}" for k, v in fields) + time
    assert line_protocol._SIMPLE.fullmatch(line)
    fast, exact = _fast_and_exact(line)
    assert repr(fast) == repr(exact)


def test_non_finite_values_cannot_be_written() -> None:
    with pytest.raises(ValueError, match="cannot hold"):
        format_line("m", {}, {"v": math.nan}, 1)
