"""KSWIN drift feeds for many series at once (`streamer.engine.array_feeds`).

river's `drift.KSWIN` test, stepped with numpy over every series of a batch together.
Each feed keeps its last `window_size` values; once it has that many, every value runs a
two-sample Kolmogorov-Smirnov test of the `stat_size` most recent values against
`stat_size` drawn at random from the older ones, and the feed fires when the test's
p-value is at most `alpha` and its statistic above 0.1, as river's does. river's p-value
(scipy's `ks_2samp`, exact for two samples of one size) depends only on the statistic,
which takes `stat_size + 1` values, so which of them fire is worked out once, up front.

What differs is the random draw: river draws each detector's with its own
`random.Random(seed)`, one call per test; here the n-th test of a feed since it was
(re-)armed draws with a hash of (`seed`, n), so a draw does not depend on how values
were batched, nor on a restart from a checkpoint. The test is the same: each draw is a
uniform sample of the older values that does not look at them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.base import grown
from models.series_rows import Rows
from streamer.engine.array_feeds import F64, I64, REFERENCE, ArrayFeeds, Fired

# The columns of a feed's row: its reference, then its test's values fed since it was
# armed and tests run since then (the window's values are in `KswinFeeds.window`).
COLUMNS = (*REFERENCE, "seen", "tests")
SEEN, TESTS = range(len(REFERENCE), len(COLUMNS))
FRESH = np.zeros(len(COLUMNS))

U64 = NDArray[np.uint64]
Draw = Callable[[I64], I64]  # tests run so far, per feed -> [feeds, stat_size] older positions


@dataclass(frozen=True)
class KswinParams:
    """river's `drift.KSWIN` parameters, as plain numbers."""

    alpha: float
    window_size: int
    stat_size: int
    seed: int

    def __post_init__(self) -> None:
        if not 0 < self.stat_size <= self.window_size - self.stat_size:
            raise ValueError(
                f"stat_size ({self.stat_size}) must be at least 1 and at most half of "
                f"window_size ({self.window_size}): its sample is drawn from the older values"
            )


class KswinFeeds(ArrayFeeds):
    """One signal's feeds, by series name, with a KSWIN test each. `draw` picks each
    test's sample of older values (by default `hashed_draw`).

    A series of unit noise whose spread grows tenfold at value 300 (its mean does not
    move: Page-Hinkley would not see it), tested raw, fires 24 values later, and not
    before:

    >>> feeds = KswinFeeds(KswinParams(0.005, 100, 30, seed=0), warmup=0)
    >>> values = np.random.default_rng(1).normal(size=400) * np.r_[np.ones(300), np.full(100, 10.0)]
    >>> names, slots = np.full(400, "a", dtype=object), np.zeros(400, dtype=np.int64)
    >>> feeds.update(names, slots, values)[0].tolist()
    [324]
    """

    kind = "kswin"
    columns = COLUMNS
    fresh = FRESH

    def __init__(self, params: KswinParams, warmup: int, draw: Draw | None = None) -> None:
        self.params = params
        self.draw = draw or hashed_draw(params)
        self.fires = firing(params)
        super().__init__(warmup)

    def _empty(self) -> None:
        super()._empty()
        self.window = np.zeros((0, self.params.window_size))  # a ring: value n at n % size

    def _grow(self, feeds: int) -> None:
        self.window = grown(self.window, feeds)

    def _test(self, f: I64, state: F64, x: F64) -> Fired:
        """Add each value to its feed's window; test the feeds whose window is full."""
        size, stat = self.params.window_size, self.params.stat_size
        seen = state[:, SEEN].astype(np.int64)
        self.window[f, seen % size] = x
        seen += 1
        state[:, SEEN] = seen
        fired = np.zeros(len(f), dtype=np.bool_)
        full = np.flatnonzero(seen >= size)
        if not len(full):
            return fired
        tests = state[full, TESTS].astype(np.int64)
        state[full, TESTS] = tests + 1
        recent = np.broadcast_to(np.arange(size - stat, size), (len(full), stat))
        order = np.concatenate([self.draw(tests), recent], axis=1)  # 0: the oldest value
        values = self.window[f[full, None], (seen[full, None] + order) % size]
        fired[full] = self.fires[ks_distance(values[:, :stat], values[:, stat:])]
        return fired

    def take_rows(self, names: list[str]) -> Rows:
        rows = super().take_rows(names)
        rows["window"] = self.window[self._feeds_of(names)]
        return rows

    def put_rows(self, names: list[str], rows: Rows) -> None:
        super().put_rows(names, rows)
        self.window[self._feeds_of(names)] = rows["window"]

    def state_dict(self) -> dict[str, Any]:
        """As `ArrayFeeds.state_dict`, with the values in each feed's window."""
        state = super().state_dict()
        k = len(self.names)
        state["window"] = self.window[:k][self._in_window(k)]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        k = len(self.names)
        self.window[:k][self._in_window(k)] = state["window"]

    def _in_window(self, k: int) -> NDArray[np.bool_]:
        """[feeds, window_size]: which places of the first k feeds' windows hold a value."""
        held: NDArray[np.bool_] = np.arange(self.params.window_size) < self.state[:k, SEEN, None]
        return held


def ks_distance(a: F64, b: F64) -> I64:
    """Per row of `a` and `b` [rows, n] (two samples of n values): the two-sample
    Kolmogorov-Smirnov statistic times n, the largest gap between the samples' counts
    of values at most v, over every v.

    >>> ks_distance(np.array([[1.0, 2.0, 3.0]]), np.array([[2.0, 5.0, 6.0]])).tolist()
    [2]
    """
    n = a.shape[1]
    both = np.concatenate([a, b], axis=1)
    order = np.argsort(both, axis=1)  # the order among equal values does not matter
    ordered = np.take_along_axis(both, order, axis=1)
    gap = np.cumsum(np.where(order < n, 1, -1), axis=1)
    # Counted only after the last of equal values, where both counts include them all.
    last = np.ones(both.shape, dtype=np.bool_)
    last[:, :-1] = ordered[:, 1:] != ordered[:, :-1]
    distance: I64 = np.abs(np.where(last, gap, 0)).max(axis=1)
    return distance


def firing(params: KswinParams) -> Fired:
    """[stat_size + 1]: whether river's KSWIN fires at each `ks_distance`: scipy's
    p-value at most `alpha` and the statistic above 0.1."""
    from scipy import stats

    n = params.stat_size
    sample = np.arange(n, dtype=np.float64)
    fires = np.zeros(n + 1, dtype=np.bool_)
    with warnings.catch_warnings():  # as river: scipy warns where exact turns asymptotic
        warnings.simplefilter("ignore", category=RuntimeWarning)
        for h in range(n + 1):
            result = stats.ks_2samp(sample, sample + h, method="auto")
            fires[h] = result.pvalue <= params.alpha and result.statistic > 0.1
    return fires


def hashed_draw(params: KswinParams) -> Draw:
    """Each test's `stat_size` distinct places among the `window_size - stat_size`
    older values: the smallest of a hash of (seed, the feed's test number, place)."""
    stat, older = params.stat_size, params.window_size - params.stat_size
    seed = _mix(np.array([params.seed % 2**64], dtype=np.uint64))
    places = np.arange(1, older + 1, dtype=np.uint64) * _GOLDEN

    def draw(tests: I64) -> I64:
        # Feeds armed together are at the same test: each test number is drawn once.
        numbers, which = np.unique(tests, return_inverse=True)
        keys = _mix(_mix(seed + numbers.astype(np.uint64))[:, None] + places)
        picked: I64 = np.argpartition(keys, stat - 1, axis=1)[:, :stat]
        return picked[which]

    return draw


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(z: U64) -> U64:
    """splitmix64's finaliser: a well-spread 64-bit hash of each value (wrapping)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    mixed: U64 = z ^ (z >> np.uint64(31))
    return mixed
