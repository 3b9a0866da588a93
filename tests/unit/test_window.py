"""The windowing buffer: regular steps from irregular events, lateness, gaps, eviction."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.core.records import StepBatch
from streamer.engine.spill import MemorySpill
from streamer.engine.window import WindowBuffer

S = 1_000  # step, in ns (small numbers keep examples readable)
T0 = 1_000_000  # step 1000

Row = tuple[str, int, tuple[float, ...], bool, bool]


def rows(batch: StepBatch) -> list[Row]:
    return [
        (
            str(batch.series[i]),
            int(batch.steps[i]),
            tuple(np.round(batch.values[i], 9)),
            bool(batch.filled[i]),
            bool(batch.reset[i]),
        )
        for i in range(len(batch))
    ]


def window(**overrides: Any) -> WindowBuffer:
    settings_: dict[str, Any] = {"step_ns": S, "max_gap": 2, "max_series": 100}
    return WindowBuffer(**{**settings_, **overrides})


def add(buffer: WindowBuffer, events: list[tuple[str, int, float]], now: float = 0.0) -> list[Row]:
    series = [e[0] for e in events]
    result = buffer.add(
        series,
        "sensor",
        np.array([e[1] for e in events], dtype=np.int64),
        np.array([e[2] for e in events], dtype=float),
        now,
    )
    return rows(result.closed)


# --- a plain, per-event reference of the same rules -------------------------------------


class Oracle:
    def __init__(self, lateness: int, max_gap: int, aggregation: str) -> None:
        self.lateness, self.max_gap, self.aggregation = lateness, max_gap, aggregation
        self.open: dict[str, dict[int, list[tuple[int, int, float]]]] = defaultdict(dict)
        self.last_closed: dict[str, int] = defaultdict(lambda: -1)
        self.max_time: dict[str, int] = {}
        self.last_real: dict[str, int | None] = defaultdict(lambda: None)
        self.last_value: dict[str, tuple[float, ...]] = {}
        self.arrivals = 0

    def agg(self, events: list[tuple[int, int, float]]) -> tuple[float, ...]:
        ordered = sorted(events)  # by time, then arrival
        values = [v for _, _, v in ordered]
        if self.aggregation == "last":
            return (values[-1],)
        if self.aggregation == "mean":
            return (sum(values) / len(values),)
        if self.aggregation == "sum":
            return (sum(values),)
        return (values[0], max(values), min(values), values[-1])

    def fill(self, last: tuple[float, ...]) -> tuple[float, ...]:
        if self.aggregation == "sum":
            return (0.0,)
        return (last[-1],) * 4 if self.aggregation == "ohlc" else last

    def add(self, events: list[tuple[str, int, float]]) -> tuple[list[Row], list[int]]:
        late, touched = [], set()
        for i, (s, t, v) in enumerate(events):
            if t // S <= self.last_closed[s]:
                late.append(i)
                continue
            self.open[s].setdefault(t // S, []).append((t, self.arrivals, v))
            self.arrivals += 1
            self.max_time[s] = max(self.max_time.get(s, t), t)
            touched.add(s)
        out: list[Row] = []
        for s in touched:
            out += self.close(s, (self.max_time[s] - self.lateness) // S - 1)
        return out, late

    def close_all(self) -> list[Row]:
        out: list[Row] = []
        for s in list(self.open):
            if self.open[s]:
                out += self.close(s, max(self.open[s]))
        return out

    def close(self, s: str, close_upto: int) -> list[Row]:
        out: list[Row] = []
        upto = max(close_upto, self.last_closed[s])
        prev, prev_value = self.last_real[s], self.last_value.get(s, ())
        for step in sorted(k for k in self.open[s] if k <= close_upto):
            values = self.agg(self.open[s].pop(step))
            reset = prev is None
            if prev is not None:
                for f in range(
                    max(prev + 1, self.last_closed[s] + 1), min(step - 1, prev + self.max_gap) + 1
                ):
                    out.append((s, f, tuple(np.round(self.fill(prev_value), 9)), True, False))
                reset = step - prev - 1 > self.max_gap
            out.append((s, step, tuple(np.round(values, 9)), False, reset))
            prev, prev_value = step, values
        if prev is not None:
            for f in range(
                max(prev + 1, self.last_closed[s] + 1), min(upto, prev + self.max_gap) + 1
            ):
                out.append((s, f, tuple(np.round(self.fill(prev_value), 9)), True, False))
        self.last_real[s], self.last_value[s], self.last_closed[s] = prev, prev_value, upto
        return out


events_st = st.lists(
    st.tuples(st.sampled_from("abcd"), st.integers(T0, T0 + 30 * S), st.integers(-5, 5).map(float)),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(events_st, min_size=1, max_size=5),
    st.sampled_from([0, S // 2, 3 * S]),
    st.integers(0, 3),
    st.sampled_from(["last", "mean", "sum", "ohlc"]),
)
def test_buffer_matches_a_plain_per_event_reference(
    batches: list[list[tuple[str, int, float]]], lateness: int, max_gap: int, aggregation: str
) -> None:
    buffer = window(allowed_lateness_ns=lateness, max_gap=max_gap, aggregation=aggregation)
    oracle = Oracle(lateness, max_gap, aggregation)
    for events in batches:
        result = buffer.add(
            [e[0] for e in events],
            "sensor",
            np.array([e[1] for e in events], dtype=np.int64),
            np.array([e[2] for e in events]),
            now=1.0,
        )
        expected, late = oracle.add(events)
        assert sorted(rows(result.closed)) == sorted(expected)
        assert result.late.tolist() == late
    assert sorted(rows(buffer.close_idle(now=10**9))) == sorted(oracle.close_all())


# --- the behaviour users rely on --------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from("xyz"), st.integers(0, 50 * S)),
        min_size=1,
        max_size=60,
        unique=True,
    ),
    st.integers(0, 4 * S),
    st.randoms(use_true_random=False),
    st.lists(st.integers(1, 10), min_size=1, max_size=20),
)
def test_any_order_and_batching_within_lateness_gives_the_same_steps(
    points: list[tuple[str, int]], lateness: int, rng: Any, sizes: list[int]
) -> None:
    events = [(s, T0 + t, float(t % 7)) for s, t in points]
    # Deliver each event at most `lateness` after its time: never late, in any batching.
    delivery = sorted(events, key=lambda e: e[1] + rng.randint(0, lateness))
    reference = window(allowed_lateness_ns=lateness)
    expected = add(reference, sorted(events, key=lambda e: e[1]))
    expected += rows(reference.close_idle(now=10**9))

    buffer = window(allowed_lateness_ns=lateness)
    got: list[Row] = []
    i = 0
    for size in sizes * 60:
        if i >= len(delivery):
            break
        result = buffer.add(*_columns(delivery[i : i + size]), now=0.0)
        assert len(result.late) == 0
        got += rows(result.closed)
        i += size
    got += rows(buffer.close_idle(now=10**9))
    assert sorted(got) == sorted(expected)


def _columns(events: list[tuple[str, int, float]]) -> tuple[list[str], str, Any, Any]:
    return (
        [e[0] for e in events],
        "sensor",
        np.array([e[1] for e in events], dtype=np.int64),
        np.array([e[2] for e in events]),
    )


def test_a_step_closes_when_the_watermark_passes_its_end() -> None:
    buffer = window(allowed_lateness_ns=S // 2)
    assert add(buffer, [("a", T0 + 100, 1.0), ("a", T0 + 900, 2.0)]) == []
    assert add(buffer, [("a", T0 + S + 400, 3.0)]) == []  # watermark T0+S-100: still open
    assert add(buffer, [("a", T0 + S + 600, 4.0)]) == [("a", 1000, (2.0,), False, True)]


def test_late_event_beyond_lateness_is_rejected() -> None:
    buffer = window(allowed_lateness_ns=S // 2)
    add(buffer, [("a", T0 + 100, 1.0), ("a", T0 + 2 * S, 2.0)])  # closes step 1000
    result = buffer.add(
        ["a", "a"], "sensor", np.array([T0 + 999, T0 + S + 1]), np.array([5.0, 6.0]), 0.0
    )
    assert result.late.tolist() == [0]


def test_late_event_within_lateness_updates_its_open_step() -> None:
    buffer = window(allowed_lateness_ns=S, aggregation="mean")
    add(buffer, [("a", T0 + 100, 1.0), ("a", T0 + S + 500, 9.0)])
    add(buffer, [("a", T0 + 200, 3.0)])  # step 1000 is still open: watermark T0+500
    assert add(buffer, [("a", T0 + 2 * S + 100, 0.0)])[0] == ("a", 1000, (2.0,), False, True)


@pytest.mark.parametrize(
    ("aggregation", "expected"),
    [("last", (3.0,)), ("mean", (2.0,)), ("sum", (6.0,)), ("ohlc", (1.0, 3.0, 1.0, 3.0))],
)
def test_aggregations(aggregation: str, expected: tuple[float, ...]) -> None:
    buffer = window(aggregation=aggregation)
    # Arrival order differs from event time order: event time decides first and last.
    out = add(
        buffer,
        [("a", T0 + 300, 3.0), ("a", T0 + 100, 1.0), ("a", T0 + 200, 2.0), ("a", T0 + S, 0.0)],
    )
    assert out == [("a", 1000, expected, False, True)]


def test_duplicate_timestamps_follow_the_aggregation() -> None:
    for aggregation, expected in [("last", (5.0,)), ("sum", (9.0,))]:
        buffer = window(aggregation=aggregation)
        out = add(buffer, [("a", T0, 4.0), ("a", T0, 5.0), ("a", T0 + S, 0.0)])
        assert out[0][2] == expected


def test_short_gaps_are_forward_filled_and_long_ones_reset_the_series() -> None:
    buffer = window(max_gap=2)
    out = add(
        buffer,
        [("a", T0, 1.0), ("a", T0 + 3 * S, 2.0), ("a", T0 + 9 * S, 3.0), ("a", T0 + 10 * S, 0.0)],
    )
    assert out == [
        ("a", 1000, (1.0,), False, True),  # first step of a series: start afresh
        ("a", 1001, (1.0,), True, False),
        ("a", 1002, (1.0,), True, False),
        ("a", 1003, (2.0,), False, False),
        ("a", 1004, (2.0,), True, False),
        ("a", 1005, (2.0,), True, False),
        ("a", 1009, (3.0,), False, True),  # 5 empty steps > max_gap: reset
    ]


def test_quiet_series_closes_its_open_step_after_idle_close_after() -> None:
    buffer = window(idle_close_after=30.0)
    add(buffer, [("a", T0, 1.0)], now=100.0)
    assert rows(buffer.close_idle(now=129.0)) == []
    assert rows(buffer.close_idle(now=130.0)) == [("a", 1000, (1.0,), False, True)]
    assert buffer.add(
        ["a"], "sensor", np.array([T0 + 10]), np.array([2.0]), 131.0
    ).late.tolist() == [0]


@pytest.mark.parametrize("idle_close_after", [30.0, math.inf])
def test_the_end_of_the_data_closes_every_open_step(idle_close_after: float) -> None:
    # What a replay's end does (close_idle at infinity). With idle closing off (evaluate,
    # train) it closed nothing: each series' last row was never scored nor written.
    buffer = window(idle_close_after=idle_close_after)
    add(buffer, [("a", T0, 1.0), ("b", T0 + S, 2.0)], now=100.0)
    assert rows(buffer.close_idle(math.inf)) == [
        ("a", 1000, (1.0,), False, True),
        ("b", 1001, (2.0,), False, True),
    ]


def state_bytes(buffer: WindowBuffer) -> int:
    """Bytes of the buffer's per-slot arrays (all of its state that grows with series)."""
    arrays = [*vars(buffer).values(), *buffer.acc.values()]
    return sum(a.nbytes for a in arrays if isinstance(a, np.ndarray))


def test_memory_stays_bounded_and_evicted_series_keep_their_state() -> None:
    spill = MemorySpill()
    buffer = window(max_series=3, spill=spill)
    bytes_before = state_bytes(buffer)
    add(buffer, [("keep", T0, 1.0), ("keep", T0 + S, 2.0)], now=1.0)  # closes step 1000
    for i in range(50):
        add(buffer, [(f"other-{i}", T0, 1.0)], now=2.0 + i)
        assert buffer.live_series <= 3
    assert "keep" in spill.items
    assert state_bytes(buffer) == bytes_before
    # It returns: step 1000 stays closed (an event for it is late) and its open step
    # (1001) continues. Its first step is a reset, as the model's state for it was not
    # kept with it.
    times = np.array([T0 + 500, T0 + 2 * S], dtype=np.int64)
    result = buffer.add(["keep", "keep"], "sensor", times, np.array([9.0, 3.0]), 100.0)
    assert result.late.tolist() == [0]
    assert rows(result.closed) == [("keep", 1001, (2.0,), False, True)]


def test_a_batch_with_more_series_than_max_series_loses_nothing() -> None:
    buffer = window(max_series=4)
    events = [(f"s{i}", T0, float(i)) for i in range(10)] + [
        (f"s{i}", T0 + S, 0.0) for i in range(10)
    ]
    out = add(buffer, events)
    assert sorted(r[0] for r in out) == sorted(f"s{i}" for i in range(10))


def test_closed_rows_stay_grouped_by_series_when_a_batch_is_added_in_halves() -> None:
    """Models step rank by rank and need each series' rows together, in step order."""
    buffer = window(max_series=4)
    start = np.array([T0, T0], dtype=np.int64)
    buffer.add(["s0", "s1"], "sensor", start, np.ones(2), 0.0)
    # Ten series, more than fit: added in halves. s0 and s1 close a step in the first
    # half, s0 another in the second.
    names = ["s0", "s1", "s2", "s3", "s4", "s0", "s5", "s6", "s7", "s8"]
    times = np.array([T0 + S, T0 + S, T0, T0, T0, T0 + 2 * S, T0, T0, T0, T0], dtype=np.int64)
    closed = buffer.add(names, "sensor", times, np.arange(10.0), 0.0).closed
    of_s0 = np.flatnonzero(closed.series == "s0")
    assert len(of_s0) == 2
    assert (np.diff(of_s0) == 1).all()  # together ...
    assert (np.diff(closed.slots) >= 0).all()  # ... and the whole batch grouped by slot
    assert closed.steps[of_s0].tolist() == [T0 // S, T0 // S + 1]


def test_a_mean_of_huge_values_does_not_overflow() -> None:
    buffer = window(aggregation="mean")
    times = np.array([T0 + 100, T0 + 200, T0 + 300, T0 + S], dtype=np.int64)
    values = np.array([1.5e308, 1.5e308, -1.5e308, 0.0])
    closed = buffer.add(["a"] * 4, "sensor", times, values, 0.0).closed
    assert closed.values.tolist() == [[5e307]]  # (1.5 + 1.5 - 1.5)e308 / 3


def test_state_dict_round_trip_continues_exactly() -> None:
    original = window(allowed_lateness_ns=S, aggregation="ohlc")
    add(original, [("a", T0, 1.0), ("a", T0 + S, 2.0), ("b", T0 + 500, 3.0)], now=1.0)
    restored = window(allowed_lateness_ns=S, aggregation="ohlc")
    restored.load_state_dict(original.state_dict())
    more = [("a", T0 + 3 * S, 4.0), ("b", T0 + 4 * S, 5.0)]
    assert add(restored, more) == add(original, more) != []


def with_history_ring(state: dict[str, Any], length: int) -> dict[str, Any]:
    """A series' or the whole window's state as written while the window kept a history
    ring of `length` steps per series (its settings held the length too)."""
    slots = state["max_time"].shape
    old = {**state, "ring": np.zeros((*slots, length, state["last_value"].shape[-1]))}
    old["ring_head"] = old["ring_count"] = np.zeros(slots, dtype=np.int64)
    if "settings" in state:
        step_ns, aggregation, open_slots = state["settings"]
        old["settings"] = (step_ns, length, aggregation, open_slots)
    return old


def test_a_checkpoint_and_spill_written_with_the_history_ring_still_load() -> None:
    spill = MemorySpill()
    original = window(max_series=2, spill=spill)
    add(original, [("a", T0, 1.0), ("a", T0 + S, 2.0)], now=1.0)
    add(original, [("b", T0, 3.0)], now=2.0)
    add(original, [("c", T0, 5.0)], now=3.0)  # spills a
    old_spill = MemorySpill({k: with_history_ring(v, 8) for k, v in spill.items.items()})
    restored = window(max_series=2, spill=old_spill)
    restored.load_state_dict(with_history_ring(original.state_dict(), 8))
    more = [("a", T0 + 2 * S, 4.0), ("b", T0 + 2 * S, 6.0)]
    got = add(restored, more, now=4.0)
    assert got == add(original, more, now=4.0)
    assert got == [
        ("a", 1001, (2.0,), False, True),
        ("b", 1000, (3.0,), False, True),
        ("b", 1001, (3.0,), True, False),
    ]


def test_a_checkpoint_of_other_window_settings_is_refused() -> None:
    state = with_history_ring(window().state_dict(), 8)
    with pytest.raises(ValueError, match="differs from the config's"):
        window(aggregation="mean").load_state_dict(state)
