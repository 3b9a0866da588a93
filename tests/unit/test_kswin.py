"""KSWIN on arrays: river's test, run for every series at once. Given river's random
draws it fires exactly where one river detector per series does, however the values are
batched; its own draws are uniform, distinct and keep river's alarm rate; its state
survives a checkpoint."""

from __future__ import annotations

import pickle
import random
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from streamer.engine.array_feeds import I64
from streamer.engine.kswin import KswinFeeds, KswinParams, firing, hashed_draw, ks_distance
from tests.unit.test_drift import fed_in_batches, shifted

PARAMS = KswinParams(alpha=0.005, window_size=100, stat_size=30, seed=3)


class RiverDraws:
    """river's draws for a KSWIN of these parameters: its n-th test since a reset
    samples with the n-th call of `random.Random(seed)` from the older places."""

    def __init__(self, params: KswinParams) -> None:
        self.rng = random.Random(params.seed)
        self.older, self.stat = params.window_size - params.stat_size, params.stat_size
        self.draws: list[list[int]] = []

    def __call__(self, tests: I64) -> I64:
        while len(self.draws) <= tests.max():
            self.draws.append(self.rng.sample(range(self.older), self.stat))
        return np.array(self.draws, dtype=np.int64)[tests]


def river_fires(values: np.ndarray, params: KswinParams) -> list[tuple[int, int]]:
    """(series, step) where one river KSWIN per series, fed its values, fires."""
    from river import drift

    fired = []
    for i, row in enumerate(values):
        detector = drift.KSWIN(params.alpha, params.window_size, params.stat_size, params.seed)
        for t, value in enumerate(row.tolist()):
            detector.update(value)  # type: ignore[no-untyped-call]
            if detector.drift_detected:
                fired.append((i, t))
    return fired


@pytest.fixture(scope="module")
def stream() -> tuple[np.ndarray, list[tuple[int, int]]]:
    values = shifted(40, 600, np.random.default_rng(21))
    values[::3, 300:] *= 4.0  # and the spread of some grows
    return values, river_fires(values, PARAMS)


@pytest.mark.parametrize("per_batch", [1, 25, "ragged", 1_000])
def test_kswin_on_arrays_with_rivers_draws_fires_where_rivers_does(
    stream: tuple[np.ndarray, list[tuple[int, int]]], per_batch: int | str
) -> None:
    values, expected = stream
    series = len(values)
    rng = np.random.default_rng(5)
    feeds = KswinFeeds(PARAMS, warmup=0, draw=RiverDraws(PARAMS))
    fired = fed_in_batches(feeds, values, per_batch, rng)
    assert sorted(fired) == sorted(expected)
    assert len({i for i, _ in expected}) > series * 3 // 4  # most series fired


def test_a_restored_checkpoint_fires_where_the_uninterrupted_feeds_do() -> None:
    values = shifted(30, 500, np.random.default_rng(22))
    names = np.array([f"s{i}" for i in range(30)], dtype=object)
    slots = np.arange(30)

    def fired(feeds: KswinFeeds, steps: range) -> list[tuple[int, int]]:
        return [(int(i), t) for t in steps for i in feeds.update(names, slots, values[:, t])[0]]

    whole = KswinFeeds(PARAMS, warmup=20)
    expected = fired(whole, range(500))
    for cut in (60, 150, 333):  # learning references, filling windows, testing
        first = KswinFeeds(PARAMS, warmup=20)
        got = fired(first, range(cut))
        blob = pickle.dumps(first.state_dict())
        assert b"streamer" not in blob  # plain values and numpy arrays, no classes of ours
        restored = KswinFeeds(PARAMS, warmup=20)
        restored.load_state_dict(pickle.loads(blob))
        assert got + fired(restored, range(cut, 500)) == expected
    assert len(expected) > 20


def test_the_draw_is_uniform_over_the_older_values_and_without_repeats() -> None:
    picks = hashed_draw(PARAMS)(np.arange(20_000))
    older = PARAMS.window_size - PARAMS.stat_size
    assert picks.shape == (20_000, PARAMS.stat_size)
    assert picks.min() >= 0
    assert picks.max() < older
    assert all(len(set(row)) == PARAMS.stat_size for row in picks.tolist())
    counts = np.bincount(picks.ravel(), minlength=older)
    expected = 20_000 * PARAMS.stat_size / older  # 8,571; a binomial sd of about 70
    assert np.abs(counts - expected).max() < 6 * 70
    other = hashed_draw(KswinParams(0.005, 100, 30, seed=4))(np.arange(20_000))
    assert (np.sort(other, axis=1) != np.sort(picks, axis=1)).any(axis=1).mean() > 0.99


def test_its_own_draws_keep_rivers_alarm_rate_and_power() -> None:
    rng = np.random.default_rng(23)
    calm = rng.normal(size=(300, 2_000))
    wider = calm.copy()
    wider[:, 1_000:] *= 3.0
    names = np.array([f"s{i}" for i in range(300)], dtype=object)
    slots = np.arange(300)

    def alarms(values: np.ndarray, draw: object) -> np.ndarray:
        feeds = KswinFeeds(PARAMS, warmup=0, draw=draw)  # type: ignore[arg-type]
        at = [feeds.update(names, slots, values[:, t])[0] for t in range(values.shape[1])]
        return np.array([(t, int(i)) for t, rows in enumerate(at) for i in rows]).reshape(-1, 2)

    calm_own, calm_river = alarms(calm, None), alarms(calm, RiverDraws(PARAMS))
    assert len(calm_river) > 50  # alarms on calm noise happen: the test runs at every value
    assert abs(len(calm_own) - len(calm_river)) < 4 * np.sqrt(len(calm_river))

    def found(values: np.ndarray, draw: object) -> int:
        """Series that fired within 100 values (one window) after the change."""
        return len({i for t, i in alarms(values, draw).tolist() if 1_000 <= t < 1_100})

    own, river = found(wider, None), found(wider, RiverDraws(PARAMS))
    assert river > 100  # 141 of 300: a threefold spread is not always seen at once
    assert abs(own - river) < 4 * np.sqrt(300 * 0.25)  # a binomial's sd at most


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 40).flatmap(
        lambda n: st.tuples(
            hnp.arrays(np.float64, (3, n), elements=st.integers(-4, 4).map(float)),
            hnp.arrays(np.float64, (3, n), elements=st.floats(-1e6, 1e6)),
        )
    ),
    st.sampled_from([0.001, 0.005, 0.05, 0.5]),
)
def test_the_test_fires_where_scipys_ks_2samp_says_river_would(
    samples: tuple[np.ndarray, np.ndarray], alpha: float
) -> None:
    from scipy import stats

    ties, spread = samples
    n = ties.shape[1]
    for a, b in ((ties, ties[::-1]), (spread, ties), (spread, spread[::-1])):
        fires = firing(KswinParams(alpha, 2 * n, n, seed=0))[ks_distance(a, b)]
        for row in range(3):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", category=RuntimeWarning)
                result = stats.ks_2samp(a[row], b[row], method="auto")
            assert fires[row] == (result.pvalue <= alpha and result.statistic > 0.1)
            assert ks_distance(a[row : row + 1], b[row : row + 1])[0] == round(result.statistic * n)


def test_a_stat_size_over_half_the_window_is_refused_with_what_is_accepted() -> None:
    from streamer.config.schema import KswinDetector

    with pytest.raises(ValueError, match=r"stat_size \(60\) must be at most half of window_size"):
        KswinDetector(type="kswin", window_size=100, stat_size=60)
