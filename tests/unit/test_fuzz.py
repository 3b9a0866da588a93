"""Fuzzing decoding and the window: over 100,000 payloads per codec, made by hypothesis
(well-formed and odd events) and by seeded byte mutations of them (flip, insert, delete,
splice, repeat), go through `Decoder.decode` and then `WindowBuffer.add` as the pipeline
sends them. Nothing may raise; every payload gives observations and/or rejections (or,
as for InfluxDB, nothing when it is line protocol of only comments and blank lines);
each bad line of line protocol is one rejection with its line number; every
observation is counted by the window, accepted or late.

Reproducible: hypothesis runs derandomized and the mutations draw from one seeded
generator, so a run of the same tests makes the same payloads. (Hypothesis also draws
constants from the project's loaded modules, so running this file alone can make other
payloads than the whole suite does; a failure shows its payload either way.)
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.codecs import EARLIEST_NS, Decoder
from connectors.line_protocol import ParsedLine, Unsigned, format_line, parse_lines
from streamer.core import records
from streamer.core.records import NS_PER_S, Observation, Position, Rejection
from streamer.engine.window import Aggregation, WindowBuffer

SEED = 20_260_101
PAYLOADS_PER_CODEC = 100_000
BASES = 10  # hypothesis-made payloads per example
MUTANTS = 22  # mutants of each
EXAMPLES = -(-PAYLOADS_PER_CODEC // (BASES * (MUTANTS + 1))) + 5
NOW = 1_800_000_000 * NS_PER_S
T_MS = 1_790_000_000_000
POS = Position("fuzz", "", 1)
MAX_SERIES = 10_000
REASONS = {
    value
    for name, value in vars(records).items()
    if name.isupper() and isinstance(value, str) and name not in ("LATE", "SINK_REJECTED")
}
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- payloads ------------------------------------------------------------------------------

series_ids = st.sampled_from(["AAPL", "MSFT", "s1", "s2", "a b", "é", "x,y", "k=v"])
finite = st.floats(allow_nan=False, allow_infinity=False)
odd_values = st.one_of(
    st.floats(), st.integers(-(2**70), 2**70), st.text(max_size=6), st.none(), st.booleans()
)
times_ms = st.integers(T_MS - 10**7, T_MS + 10**7) | st.integers(-(2**64), 2**64)
ticks = st.fixed_dictionaries({"symbol": series_ids, "price": finite, "ts": times_ms})
readings = st.fixed_dictionaries(
    {"id": series_ids, "vs": st.dictionaries(st.sampled_from("abc"), finite), "ts": times_ms}
)
anything = st.dictionaries(
    st.sampled_from(["symbol", "price", "id", "v", "vs", "ts", "x"]),
    odd_values | st.dictionaries(st.text(max_size=3), odd_values, max_size=3),
    max_size=5,
)
json_payloads = st.lists(
    st.one_of(ticks, readings, anything).map(lambda e: json.dumps(e).encode()),
    min_size=BASES,
    max_size=BASES,
)

names = st.sampled_from(["env", "cpu", "m x", "m,y", "é"])
lp_fields = st.dictionaries(
    st.sampled_from(["v", "w", "n", "time", "a b"]),
    st.one_of(
        finite,
        st.integers(-(2**63), 2**63 - 1),
        st.integers(0, 2**64 - 1).map(Unsigned),
        st.booleans(),
        st.text(st.sampled_from('ab ,="\\\n'), max_size=4),
    ),
    min_size=1,
    max_size=3,
)
lp_times = st.integers(T_MS * 10**6 - 10**16, T_MS * 10**6 + 10**16) | st.integers(
    -(2**63) + 2, 2**63 - 2
)


@st.composite
def lp_lines(draw: st.DrawFn) -> str:
    tags = {"id": draw(series_ids)} if draw(st.booleans()) or draw(st.booleans()) else {}
    line = format_line(draw(names), tags, draw(lp_fields), draw(lp_times))
    if draw(st.integers(0, 4)) == 0:
        line = line.rsplit(" ", 1)[0]  # no timestamp: the arrival time
    return line


lp_payloads = st.lists(
    st.lists(lp_lines() | st.sampled_from(["# comment", "", "  "]), min_size=1, max_size=4).map(
        lambda lines: "\n".join(lines).encode()
    ),
    min_size=BASES,
    max_size=BASES,
)

INTERESTING = [*b'\\,= "\n\t#{}[]:-+.0123456789eEiuNtf', 0x00, 0x7F, 0xC3, 0xFF]


def mutate(rng: random.Random, raw: bytes, others: list[bytes]) -> bytes:
    """raw after one to three byte mutations (one, mostly): a digit changed (which keeps
    most payloads well formed), a bit flipped, a byte inserted, bytes deleted, a piece of
    another payload spliced in, a piece repeated."""
    data = bytearray(raw)
    for _ in range(rng.choice((1, 1, 2, 3))):
        at = rng.randint(0, len(data))
        kind = rng.randrange(6)
        if kind == 5:
            digits = [i for i, byte in enumerate(data) if 0x30 <= byte <= 0x39]
            if digits:
                data[rng.choice(digits)] = rng.randrange(0x30, 0x3A)
        elif kind == 0 and at < len(data):
            data[at] ^= 1 << rng.randrange(8)
        elif kind == 1:
            byte = rng.choice(INTERESTING) if rng.random() < 0.7 else rng.randrange(256)
            data[at:at] = bytes([byte])
        elif kind == 2:
            del data[at : at + rng.randint(1, 4)]
        elif kind == 3:
            other = rng.choice(others)
            start = rng.randint(0, len(other))
            piece = other[start : start + rng.randint(1, 16)]
            data[at : at + rng.randint(0, 8)] = piece
        else:
            start = rng.randint(0, len(data))
            data[at:at] = data[start : start + rng.randint(1, 24)]
    return bytes(data)


# --- the run -----------------------------------------------------------------------------


@dataclass
class FuzzRun:
    """Decoders, two windows (one of the values, one counting events) and the tally."""

    decoders: list[Decoder]
    all_decoders: bool
    rng: random.Random = field(default_factory=lambda: random.Random(SEED))
    payloads: int = 0
    observed: int = 0
    late: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        def window(aggregation: Aggregation) -> WindowBuffer:
            # Room for every series of the run: none is spilled, so every step is closed
            # (and counted) at the end.
            return WindowBuffer(
                step_ns=NS_PER_S,
                aggregation=aggregation,
                allowed_lateness_ns=NS_PER_S,
                max_series=MAX_SERIES,
                idle_close_after=1.0,
            )

        self.values, self.counts = window("mean"), window("sum")
        self.counted = 0.0

    def check(self, bases: list[bytes]) -> None:
        """Decode the bases and their mutants (one micro-batch), then window them."""
        payloads = list(bases)
        for base in bases:
            payloads += [mutate(self.rng, base, bases) for _ in range(MUTANTS)]
        batch: list[Observation] = []
        for i, raw in enumerate(payloads):
            # The bases go through every decoder, each mutant through one.
            decoders = (
                self.decoders
                if i < len(bases) or self.all_decoders
                else [self.decoders[i % len(self.decoders)]]
            )
            lines = None
            if self.decoders[0].payload_format == "line_protocol":
                lines = parse_lines(raw.decode("utf-8", "surrogateescape"))
            for decoder in decoders:
                observations, rejections = decoder.decode(raw, NOW, POS)
                _check_payload(decoder, raw, lines, observations, rejections)
                self.reasons.update(r.reason for r in rejections)
                batch += observations
        self.payloads += len(payloads)
        self._window(batch)

    def _window(self, batch: list[Observation]) -> None:
        series = [o.series for o in batch]
        kinds: list[str] = [o.kind for o in batch]
        times = np.array([o.time_ns for o in batch], dtype=np.int64)
        result = self.values.add(series, kinds, times, np.array([o.value for o in batch]), 0.0)
        counted = self.counts.add(series, kinds, times, np.ones(len(batch)), 0.0)
        assert np.array_equal(result.late, counted.late)
        assert np.isfinite(result.closed.values).all()
        self.observed += len(batch)
        self.late += len(result.late)
        self.counted += float(counted.closed.values[~counted.closed.filled].sum())

    def finish(self) -> None:
        """Close every open step; every observation was counted once, or was late."""
        closed = self.counts.close_idle(10.0)
        self.counted += float(closed.values[~closed.filled].sum())
        assert np.isfinite(self.values.close_idle(10.0).values).all()
        assert self.payloads >= PAYLOADS_PER_CODEC
        assert self.counts.live_series < MAX_SERIES
        assert self.counted == self.observed - self.late
        assert self.observed > 5_000, self.observed  # the windows saw real traffic


def _check_payload(
    decoder: Decoder,
    raw: bytes,
    parsed: list[ParsedLine] | None,
    observations: list[Observation],
    rejections: list[Rejection],
) -> None:
    for r in rejections:
        assert r.reason in REASONS, r
        assert r.detail, r
        assert r.position == POS
        assert r.raw in raw
    for o in observations:
        assert math.isfinite(o.value), o
        assert o.series, o
        assert EARLIEST_NS <= o.time_ns <= NOW + decoder.max_future_ns, o
    if parsed is None:
        assert observations or rejections, raw
        return
    if not parsed:
        assert (observations, rejections) == ([], []), raw
        return
    numbers = {p.number for p in parsed}
    by_line = Counter(int(r.detail[5 : r.detail.index(":")]) for r in rejections)
    assert set(by_line) <= numbers, (raw, rejections)
    for p in parsed:
        if p.error is not None:  # one rejection, and only one, for a line the server refuses
            assert by_line[p.number] == 1, (raw, rejections)
    good = [p for p in parsed if p.error is None]
    assert len(observations) + sum(by_line[p.number] for p in good) >= len(good), raw


def _fuzz(
    decoders: list[Decoder], payloads: st.SearchStrategy[list[bytes]], all_decoders: bool
) -> FuzzRun:
    run = FuzzRun(decoders, all_decoders)

    @FUZZ
    @given(payloads)
    def example(bases: list[bytes]) -> None:
        run.check(bases)

    example()
    run.finish()
    return run


def _decoder(**options: object) -> Decoder:
    return Decoder(kind="sensor", series_field="id", value_field="v", **options)  # type: ignore[arg-type]


def test_json_payloads_never_raise_and_every_one_is_accounted_for() -> None:
    prices = Decoder(kind="price", series_field="symbol", value_field="price")
    run = _fuzz([prices, _decoder(values_field="vs")], json_payloads, all_decoders=True)
    assert {"malformed", "non_numeric", "bad_time", "missing_field"} <= set(run.reasons)


def test_line_protocol_payloads_never_raise_and_every_one_is_accounted_for() -> None:
    decoders = [
        _decoder(values_field="vs", payload_format="line_protocol"),
        _decoder(payload_format="line_protocol", missing_time="reject"),
    ]
    run = _fuzz(decoders, lp_payloads, all_decoders=False)
    assert {"malformed", "non_numeric", "bad_time", "missing_field"} <= set(run.reasons)
