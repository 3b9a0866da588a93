import contextlib
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.line_protocol import LineProtocolError, format_line, parse_line

# Names may hold anything InfluxDB can store faithfully: no control characters, and no
# backslash (InfluxDB keeps it literally, so `a\` before a comma would be ambiguous).
names = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\\"),
    min_size=1,
    max_size=12,
)
field_values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**63), 2**63 - 1),
    st.booleans(),
    st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=12),
)


@given(
    names.filter(lambda name: not name.startswith("#")),
    st.dictionaries(names, names, max_size=3),
    st.dictionaries(names, field_values, min_size=1, max_size=3),
    st.integers(-(2**63), 2**63 - 1),
)
def test_a_formatted_line_parses_back_to_the_same_point(
    measurement: str, tags: dict[str, str], fields: dict[str, object], time: int
) -> None:
    line = parse_line(format_line(measurement, tags, fields, time))  # type: ignore[arg-type]
    assert (line.measurement, line.tags, line.time) == (measurement, tags, time)
    assert line.fields.keys() == fields.keys()
    for key, value in fields.items():
        got = line.fields[key]
        assert type(got) is type(value)
        assert got == value or (isinstance(value, float) and math.isclose(got, value))  # type: ignore[arg-type]


@given(st.text(max_size=80))
def test_any_text_parses_or_raises_line_protocol_error(text: str) -> None:
    with contextlib.suppress(LineProtocolError):
        parse_line(text)


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("cpu", "no fields"),
        ("cpu load", "expected key=value"),
        ("cpu load=abc", "not a number"),
        ('cpu s="open', "unterminated"),
        ("cpu load=1 12:00", "not an integer"),
        (",host=a load=1", "empty measurement"),
    ],
)
def test_bad_lines_say_what_is_wrong(line: str, fragment: str) -> None:
    with pytest.raises(LineProtocolError, match=fragment):
        parse_line(line)


def test_non_finite_values_cannot_be_written() -> None:
    with pytest.raises(ValueError, match="cannot hold"):
        format_line("m", {}, {"v": math.nan}, 1)
