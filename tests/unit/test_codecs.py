"""Decoding price ticks and sensor readings, and every way an input can be rejected."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.codecs import Decoder
from connectors.line_protocol import parse_lines
from streamer.config.file import parse_config
from streamer.core.records import NS_PER_S, Observation, Position

NOW = 1_800_000_000 * NS_PER_S  # 2027-01-15
T = 1_790_000_000  # seconds, before NOW
POS = Position("src", "", 7)

prices = Decoder(kind="price", series_field="symbol", value_field="price")
sensors = Decoder(
    kind="sensor", series_field="sensor_id", value_field="value", values_field="values"
)
lines = Decoder(
    kind="sensor",
    series_field="sensor_id",
    value_field="value",
    values_field="values",
    payload_format="line_protocol",
)
TS = T * NS_PER_S  # a line protocol timestamp (ns)


def decode(decoder: Decoder, event: object) -> tuple[list[Observation], list[str]]:
    observations, rejections = decoder.decode(json.dumps(event).encode(), NOW, POS)
    assert all(r.position == POS for r in rejections)
    return observations, [r.reason for r in rejections]


def test_price_tick_becomes_one_observation() -> None:
    observations, rejected = decode(
        prices, {"symbol": "AAPL", "price": 187.5, "size": 3, "ts": T * 1000}
    )
    assert rejected == []
    assert observations == [Observation("AAPL", T * NS_PER_S, 187.5, "price", POS)]


def test_multi_value_reading_becomes_one_series_per_field() -> None:
    event = {"sensor_id": "s1", "values": {"temp": 21.5, "hum": "40"}, "ts": T * 1000}
    observations, rejected = decode(sensors, event)
    assert rejected == []
    assert {(o.series, o.value) for o in observations} == {("s1/temp", 21.5), ("s1/hum", 40.0)}


def test_split_fields_off_reads_only_the_main_value() -> None:
    decoder = Decoder(
        kind="sensor",
        series_field="sensor_id",
        value_field="value",
        values_field="values",
        split_fields=False,
    )
    event = {"sensor_id": "s1", "value": 1, "values": {"temp": 21.5}, "ts": T * 1000}
    observations, _ = decode(decoder, event)
    assert [o.series for o in observations] == ["s1"]


@pytest.mark.parametrize(
    ("unit", "value"),
    [
        ("s", T),
        ("s", T + 0.5),
        ("ms", T * 1000),
        ("us", T * 10**6),
        ("ns", T * 10**9),
        ("ms", str(T * 1000)),
        ("iso8601", "2026-09-21T14:13:20Z"),
        ("iso8601", "2026-09-21T16:13:20+02:00"),
        ("iso8601", "2026-09-21t14:13:20z"),  # RFC 3339 allows either case
    ],
)
def test_time_units(unit: str, value: object) -> None:
    decoder = Decoder(kind="sensor", series_field="id", value_field="v", time_unit=unit)  # type: ignore[arg-type]
    observations, rejected = decode(decoder, {"id": "a", "v": 1, "ts": value})
    assert rejected == []
    expected = T * NS_PER_S + (NS_PER_S // 2 if value == T + 0.5 else 0)
    assert observations[0].time_ns == expected


def test_line_protocol_reading_uses_tags_fields_and_ns_timestamp() -> None:
    decoder = Decoder(
        kind="sensor",
        series_field="sensor_id",
        value_field="value",
        values_field="values",
        payload_format="line_protocol",
    )
    raw = f"env,sensor_id=s1 temperature=21.5,humidity=40i {T * NS_PER_S}".encode()
    observations, rejections = decoder.decode(raw, NOW)
    assert rejections == []
    assert {(o.series, o.value, o.time_ns) for o in observations} == {
        ("s1/temperature", 21.5, T * NS_PER_S),
        ("s1/humidity", 40.0, T * NS_PER_S),
    }


def test_series_from_outside_the_payload() -> None:
    observations, _ = prices.decode(b'{"price": 1, "ts": %d}' % (T * 1000), NOW, series="KEY")
    assert observations[0].series == "KEY"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "malformed"),
        (b"[1, 2]", "malformed"),
        (b"\xff\xfe", "malformed"),
        (b'{"price": 1, "ts": 1790000000000}', "missing_field"),
        (b'{"symbol": "A", "ts": 1790000000000}', "missing_field"),
        (b'{"symbol": "A", "price": 1}', "missing_field"),
        (b'{"symbol": "A", "price": "abc", "ts": 1790000000000}', "non_numeric"),
        (b'{"symbol": "A", "price": true, "ts": 1790000000000}', "non_numeric"),
        (b'{"symbol": "A", "price": NaN, "ts": 1790000000000}', "non_finite"),
        (b'{"symbol": "A", "price": Infinity, "ts": 1790000000000}', "non_finite"),
        (b'{"symbol": "A", "price": 1, "ts": 1790000000}', "bad_time"),  # seconds given as ms: 1970
        (b'{"symbol": "A", "price": 1, "ts": 1900000000000}', "bad_time"),  # years ahead
        (b'{"symbol": "A", "price": 1, "ts": "soon"}', "bad_time"),
        (b'{"symbol": "A\\nB", "price": 1, "ts": 1790000000000}', "malformed"),
        (b'{"symbol": {"x": 1}, "price": 1, "ts": 1790000000000}', "malformed"),
        # Hostile input: none of it may raise out of decoding.
        (b'{"symbol": "A", "price": 1, "ts": 1790000000000, "x": ' + b"[" * 100_000, "malformed"),
        (b'{"symbol": "A", "price": NaN, "ts": 1790000000000, "x": ' + b"[" * 5_000, "malformed"),
        (b'{"symbol": "A", "price": 1' + b"0" * 309 + b', "ts": 1790000000000}', "non_finite"),
        (b'{"symbol": "A", "price": 1, "ts": 1' + b"0" * 309 + b"}", "bad_time"),
        (b'{"symbol": "A", "price": 1, "ts": 1e308}', "bad_time"),  # ms beyond a float in ns
        (b'{"symbol": "\\ud800", "price": 1, "ts": 1790000000000}', "malformed"),
        (b'{"symbol": "A\xff", "price": 1, "ts": 1790000000000}', "malformed"),
        (b'{"symbol": "' + b"x" * 300 + b'", "price": 1, "ts": 1790000000000}', "malformed"),
        # Strict JSON: a number in a string must still be a JSON number; no byte order mark.
        (b'{"symbol": "A", "price": "1_000", "ts": 1790000000000}', "non_numeric"),
        ('{"symbol": "A", "price": "\u0661\u0662", "ts": 1790000000000}'.encode(), "non_numeric"),
        (b'{"symbol": "A", "price": " 12", "ts": 1790000000000}', "non_numeric"),
        (b'{"symbol": "A", "price": "NaN", "ts": 1790000000000}', "non_finite"),
        (b'\xef\xbb\xbf{"symbol": "A", "price": 1, "ts": 1790000000000}', "malformed"),
        (
            b'{"symbol": "A", "price": 1, "ts": 1790000000000, "pad": "' + b" " * 2**20 + b'"}',
            "oversized",
        ),
    ],
)
def test_bad_input_is_rejected_with_its_reason_and_bytes(raw: bytes, reason: str) -> None:
    observations, rejections = prices.decode(raw, NOW, POS)
    assert observations == []
    assert [r.reason for r in rejections] == [reason]
    assert rejections[0].raw == raw
    assert rejections[0].detail


def test_one_bad_value_in_a_reading_rejects_only_that_value() -> None:
    event = {"sensor_id": "s1", "values": {"temp": 21.5, "hum": None}, "ts": T * 1000}
    observations, rejected = decode(sensors, event)
    assert [o.series for o in observations] == ["s1/temp"]
    assert rejected == ["non_numeric"]


def test_allowlist_rejects_unknown_series() -> None:
    decoder = Decoder(
        kind="price", series_field="symbol", value_field="price", allowlist=frozenset({"AAPL"})
    )
    assert decode(decoder, {"symbol": "AAPL", "price": 1, "ts": T * 1000})[1] == []
    assert decode(decoder, {"symbol": "MSFT", "price": 1, "ts": T * 1000})[1] == ["unknown_series"]


def _nested(inner: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    _nested,
    max_leaves=10,
)


@given(
    st.dictionaries(
        st.sampled_from(["sensor_id", "value", "values", "ts", "other"]), json_values, max_size=5
    )
)
def test_any_json_event_decodes_or_is_rejected_never_raises(event: dict[str, object]) -> None:
    raw = json.dumps(event).encode()
    observations, rejections = sensors.decode(raw, NOW, POS)
    assert observations or rejections
    assert all(r.raw == raw for r in rejections)


@given(st.binary(max_size=64))
def test_any_bytes_decode_or_are_rejected_never_raise(raw: bytes) -> None:
    observations, rejections = prices.decode(raw, NOW)
    assert observations or rejections
    observations, rejections = lines.decode(raw, NOW)
    # Line protocol of nothing but comments and blank lines is empty, as for InfluxDB.
    empty = not parse_lines(raw.decode("utf-8", "surrogateescape"))
    assert bool(observations or rejections) != empty


def test_a_bad_series_id_from_outside_the_payload_or_in_a_field_name_is_rejected() -> None:
    raw = b'{"value": 1, "ts": 1790000000000}'
    for outside in ("\ud800", "a\x00b", "x" * 300):
        observations, rejections = sensors.decode(raw, NOW, POS, series=outside)
        assert observations == []
        assert [r.reason for r in rejections] == ["malformed"]
    reading = {"sensor_id": "s1", "values": {"ok": 1.0, "bad\ud800": 2.0}, "ts": T * 1000}
    observations, rejected = decode(sensors, reading)
    assert [o.series for o in observations] == ["s1/ok"]
    assert rejected == ["malformed"]


@given(st.text(max_size=300))
def test_every_series_id_that_passes_decoding_is_valid_utf8_within_the_byte_limit(
    sid: str,
) -> None:
    observations, _ = prices.decode(
        json.dumps({"symbol": sid, "price": 1.0, "ts": T * 1000}).encode(), NOW, POS
    )
    for observation in observations:
        assert len(observation.series.encode("utf-8")) <= 256
        assert not any(ord(c) < 32 for c in observation.series)


def test_a_number_in_a_json_string_is_read_by_json_grammar() -> None:
    for text, number in [("12", 12.0), ("-0.5", -0.5), ("1.5e3", 1500.0)]:
        raw = b'{"symbol": "A", "price": "%s", "ts": 1790000000000}' % text.encode()
        observations, _ = prices.decode(raw, NOW, POS)
        assert [o.value for o in observations] == [number]


# --- line protocol, as InfluxDB reads it -------------------------------------------------


def test_a_line_protocol_payload_is_read_line_by_line() -> None:
    raw = (
        f"# sent by telegraf\n"
        f"env,sensor_id=s1 value=1 {TS}\n"
        f"\n"
        f"env,sensor_id=s2 value=+2 {TS}\n"  # refused by InfluxDB: no leading +
        f'env,sensor_id=s3 value=3,note="two\nlines" {TS}\n'
        f"env,sensor_id=s4 value=4 {TS}\n"
    ).encode()
    observations, rejections = lines.decode(raw, NOW, POS)
    assert [(o.series, o.value, o.position) for o in observations] == [
        ("s1", 1.0, POS),
        ("s3", 3.0, POS),
        ("s4", 4.0, POS),
    ]
    bad_line = f"env,sensor_id=s2 value=+2 {TS}".encode()
    assert [(r.reason, r.detail, r.raw) for r in rejections] == [
        ("malformed", "line 4: line protocol: invalid boolean", bad_line)
    ]


def test_every_bad_line_is_its_own_rejection_with_its_number() -> None:
    raw = f"bad\nenv value=1 {TS}\nenv,sensor_id=a value=x {TS}\nenv,sensor_id=b value=1 1"
    observations, rejections = lines.decode(raw.encode(), NOW, POS)
    assert observations == []
    assert [(r.reason, r.detail.split(":")[0]) for r in rejections] == [
        ("malformed", "line 1"),
        ("missing_field", "line 2"),
        ("malformed", "line 3"),
        ("bad_time", "line 4"),
    ]


@pytest.mark.parametrize("raw", [b"", b"\n\n", b"# just a comment\n", b"  \t\n# a\n#b"])
def test_a_payload_of_comments_and_blank_lines_is_empty(raw: bytes) -> None:
    assert lines.decode(raw, NOW, POS) == ([], [])


@pytest.mark.parametrize(
    ("value", "number"),
    [
        ("9007199254740992i", 2.0**53),
        ("-9007199254740992i", -(2.0**53)),
        ("9007199254740992u", 2.0**53),
        ("12i", 12.0),
        ("1.5", 1.5),
    ],
)
def test_a_number_a_float_holds_exactly_is_a_value(value: str, number: float) -> None:
    observations, rejections = lines.decode(f"m,sensor_id=s value={value} {TS}".encode(), NOW)
    assert rejections == []
    assert [o.value for o in observations] == [number]


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("9007199254740993i", "cannot hold exactly"),
        ("-9007199254740993i", "cannot hold exactly"),
        ("18446744073709551615u", "cannot hold exactly"),
        ('"5"', "string field"),
        ("true", "boolean field"),
    ],
)
def test_a_value_that_is_not_exactly_a_number_is_non_numeric(value: str, words: str) -> None:
    observations, rejections = lines.decode(f"m,sensor_id=s value={value} {TS}".encode(), NOW)
    assert observations == []
    assert [r.reason for r in rejections] == ["non_numeric"]
    assert words in rejections[0].detail


def test_a_line_without_a_timestamp_takes_the_arrival_time_by_default() -> None:
    observations, _ = lines.decode(b"m,sensor_id=s value=1", NOW + 123_456_789)
    assert [o.time_ns for o in observations] == [NOW + 123_456_789]
    in_ms = Decoder(
        kind="sensor",
        series_field="sensor_id",
        value_field="value",
        payload_format="line_protocol",
        time_unit="ms",
    )
    observations, _ = in_ms.decode(b"m,sensor_id=s value=1", NOW + 123_456_789)
    assert [o.time_ns for o in observations] == [NOW + 123_000_000]  # cut to the unit


def test_a_line_without_a_timestamp_can_be_rejected() -> None:
    strict = Decoder(
        kind="sensor",
        series_field="sensor_id",
        value_field="value",
        payload_format="line_protocol",
        missing_time="reject",
    )
    observations, rejections = strict.decode(b"m,sensor_id=s value=1", NOW)
    assert observations == []
    assert [(r.reason, r.detail) for r in rejections] == [
        ("missing_field", "line 1: no timestamp (fields.missing_time is reject)")
    ]


def test_line_protocol_timestamps_are_ns_and_json_times_ms_by_default() -> None:
    assert lines.time_unit == "ns"
    assert prices.time_unit == "ms"
    assert prices.missing_time == "reject"
    with pytest.raises(ValueError, match="iso8601"):
        Decoder(
            kind="sensor",
            series_field="id",
            value_field="v",
            time_unit="iso8601",
            payload_format="line_protocol",
        )


SOURCES = """
sources:
  - {type: mqtt, topics: [a], format: line_protocol}
  - {type: mqtt, topics: [b]}
  - {type: mqtt, topics: [c], format: line_protocol,
     fields: {time_unit: ms, missing_time: reject, duplicate_keys: last}}
sinks:
  - {type: file, path: out.lp}
"""


def test_a_sources_decoding_options_default_by_its_format() -> None:
    from streamer.config.edges import build_decoder  # the daemon's imports take seconds

    config = parse_config(SOURCES, "test.yaml", {})
    shown = [
        (s.fields.time_unit, s.fields.missing_time, s.fields.duplicate_keys) for s in config.sources
    ]
    assert shown == [
        ("ns", "arrival", "reject"),
        ("ms", "reject", "reject"),
        ("ms", "reject", "last"),
    ]
    decoders = [build_decoder(config, source) for source in config.sources]
    assert [(d.time_unit, d.missing_time, d.duplicate_keys) for d in decoders] == shown


def test_a_byte_order_mark_before_line_protocol_is_part_of_the_name_as_for_influxdb() -> None:
    raw = b"\xef\xbb\xbfenv,sensor_id=s value=1 %d" % TS
    observations, rejections = lines.decode(raw, NOW)
    assert (len(observations), rejections) == (1, [])


# --- JSON: a key given twice ---------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b'{"symbol": "A", "price": 1, "price": 2, "ts": 1790000000000}',
        b'{"symbol": "A", "price": 1, "ts": 1790000000000, "x": {"a": 1, "a": 1}}',
        b'{"symbol": "A", "price": 1, "ts": 1790000000000, "x": [{"k": 1}, {"k": 1, "k": 2}]}',
        # colons in strings do not hide a twin, nor does an escaped colon
        b'{"symbol": "A:B", "price": 1, "price": 2, "ts": 1790000000000}',
        b'{"symbol": "A\\u003aB", "price": 1, "price": 1, "ts": 1790000000000, "n": "a:b:c"}',
        b'{"symbol": "A", "price": 1, "ts": 1790000000000, "a:b": 1, "a:b": 2}',
        b'{"symbol": "A", "price": NaN, "price": 1, "ts": 1790000000000}',
    ],
)
def test_a_json_key_given_twice_is_malformed(raw: bytes) -> None:
    observations, rejections = prices.decode(raw, NOW, POS)
    assert observations == []
    assert [r.reason for r in rejections] == ["malformed"]
    assert "appears twice" in rejections[0].detail


@pytest.mark.parametrize(
    "raw",
    [
        b'{"symbol": "A", "price": 1, "ts": 1790000000000, "x": {"price": 2}, "y": [{"a": 1}]}',
        b'{"symbol": "A:B", "price": 1, "ts": 1790000000000, "note": "12:00:00"}',
        b'{"symbol": "A\\u003aB", "price": 1, "ts": 1790000000000, "a:b": "x"}',
        b'{"symbol": "A", "price": 1, "ts": 1790000000000, "x": [{"k": 1}, {"k": 2}]}',
    ],
)
def test_the_same_key_in_different_objects_is_not_a_twin(raw: bytes) -> None:
    observations, rejections = prices.decode(raw, NOW, POS)
    assert rejections == []
    assert len(observations) == 1


def test_iso_times_with_colons_pass_and_twins_are_still_found() -> None:
    decoder = Decoder(kind="sensor", series_field="id", value_field="v", time_unit="iso8601")
    good = b'{"id": "a", "v": 1, "ts": "2026-09-21T14:13:20+02:00"}'
    twin = b'{"id": "a", "v": 1, "v": 2, "ts": "2026-09-21T14:13:20+02:00"}'
    assert decoder.decode(good, NOW)[1] == []
    assert [r.reason for r in decoder.decode(twin, NOW)[1]] == ["malformed"]


def test_duplicate_keys_last_takes_the_last_value() -> None:
    decoder = Decoder(
        kind="price", series_field="symbol", value_field="price", duplicate_keys="last"
    )
    raw = b'{"symbol": "A", "price": 1, "price": 2, "ts": 1790000000000}'
    observations, rejections = decoder.decode(raw, NOW)
    assert ([o.value for o in observations], rejections) == ([2.0], [])
