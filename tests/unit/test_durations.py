from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamer.core.durations import MAX_DURATION, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500ms", timedelta(milliseconds=500)),
        ("10s", timedelta(seconds=10)),
        ("5m", timedelta(minutes=5)),
        ("1h", timedelta(hours=1)),
        ("2d", timedelta(days=2)),
        ("1.5s", timedelta(milliseconds=1500)),
        (" 3 m ", timedelta(minutes=3)),
    ],
)
def test_config_duration_strings_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["10", 10, 1.5, "ten seconds", "5 parsecs", "-1s", "1w", "", True])
def test_duration_without_a_known_unit_is_rejected_with_the_accepted_form(bad: object) -> None:
    with pytest.raises(ValueError, match=r"500ms.*10s.*5m.*1h"):
        parse_duration(bad)


@given(st.integers(min_value=0, max_value=10**12))
def test_formatted_duration_parses_back_to_the_same_value(millis: int) -> None:
    value = timedelta(milliseconds=millis)
    assert parse_duration(format_duration(value)) == value


@given(st.integers(min_value=1, max_value=10**5), st.sampled_from(["ms", "s", "m", "h", "d"]))
def test_format_uses_the_largest_exact_unit(number: int, unit: str) -> None:
    text = format_duration(parse_duration(f"{number}{unit}"))
    assert parse_duration(text) == parse_duration(f"{number}{unit}")
    assert len(text) <= len(f"{number}{unit}")


@given(st.integers(min_value=0, max_value=MAX_DURATION // timedelta(microseconds=1)))
def test_any_duration_down_to_the_microsecond_is_shown_exactly(micros: int) -> None:
    value = timedelta(microseconds=micros)
    assert parse_duration(format_duration(value)) == value


@given(st.integers(min_value=106_752, max_value=10**400), st.sampled_from(["d", "h", "s"]))
def test_a_duration_too_long_for_nanoseconds_is_rejected_with_the_limit(
    number: int, unit: str
) -> None:
    text = f"{number * {'d': 1, 'h': 24, 's': 86_400}[unit]}{unit}"
    with pytest.raises(ValueError, match=r"too long; at most 106751d"):
        parse_duration(text)
