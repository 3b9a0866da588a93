"""The replay buffer keeps whole windows of consecutive steps, never across a reset."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from models.replay_buffer import RAW, ReplayBuffer

# Per step: which of three slots have a step, and which of those restart (reset); a
# slot that skips a step restarts too, as the window resets a series after a gap.
steps_strategy = st.lists(
    st.tuples(st.sets(st.integers(0, 2), min_size=1), st.sets(st.integers(0, 2))),
    max_size=60,
)


@given(steps_strategy, st.integers(2, 6), st.integers(1, 6))
def test_windows_are_consecutive_steps_of_one_series_since_its_reset(
    steps: list[tuple[set[int], set[int]]], window: int, stride: int
) -> None:
    stride = min(stride, window)
    buffer = ReplayBuffer(window, stride, capacity_steps=window * 1000)
    segments: dict[int, list[list[float]]] = {0: [[]], 1: [[]], 2: [[]]}
    last_seen = {0: -1, 1: -1, 2: -1}
    for t, (present, resets) in enumerate(steps):
        slots = np.array(sorted(present))
        # As from the window: a series' steps are consecutive, or the next one is a reset.
        reset = np.array([s in resets or last_seen[s] != t - 1 for s in slots])
        last_seen.update({s: t for s in present})
        raw = slots * 1000.0 + t  # identifies the slot and the step
        zeros, ones = np.zeros(len(slots)), np.ones(len(slots))
        buffer.record(slots, np.full(len(slots), t), 1, (raw, raw, zeros, ones), reset, reset)
        for s, r in zip(slots.tolist(), reset.tolist(), strict=True):
            if r:
                segments[s].append([])
            segments[s][-1].append(float(s * 1000 + t))

    # Expected: in each run of steps since a reset, a window every `stride` steps once
    # `window` steps are there.
    expected = sorted(
        tuple(run[end - window : end])
        for runs in segments.values()
        for run in runs
        for end in range(window, len(run) + 1, stride)
    )
    snapshot = buffer.snapshot()
    stored = sorted(tuple(w[:, RAW].tolist()) for w in snapshot.windows)
    assert stored == expected
    # Each window knows its first step (for calendar inputs) and its series' reading.
    step_of_first = snapshot.windows[:, 0, RAW] % 1000
    np.testing.assert_array_equal(snapshot.first_steps, step_of_first)


def test_the_oldest_windows_make_room_for_new_ones() -> None:
    buffer = ReplayBuffer(window=2, stride=2, capacity_steps=6)  # room for 3 windows
    for t in range(10):
        value, first = np.array([float(t)]), np.array([t == 0])
        buffer.record(np.array([0]), np.array([t]), 1, (value, value, value, value), first, first)
    windows = buffer.snapshot().windows[:, :, RAW].tolist()
    assert windows == [[4.0, 5.0], [6.0, 7.0], [8.0, 9.0]]
