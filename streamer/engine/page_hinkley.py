"""Page-Hinkley drift feeds for many series at once (`streamer.engine.array_feeds`).

The same feeds as the per-value path with a river `drift.PageHinkley` each, and the
same detections, stepped with numpy over every series of a batch together. river's
update, for each feed, is

    n += 1;  mean += (1 / n) * (x - mean);  dev = x - mean
    up = alpha * up + dev - delta;      min_up = min(min_up, up)
    down = alpha * down + dev + delta;  max_down = max(max_down, down)
    fired = n >= min_instances and (up - min_up > threshold or max_down - down > threshold)

(two-sided; `min_up` starts at inf, `max_down` at -1), done here in the same float
operations in the same order, so the arrays fire where river's detectors would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from streamer.engine.array_feeds import (
    COUNT,
    F64,
    I64,
    MEAN,
    RECENT,
    REFERENCE,
    VAR,
    ArrayFeeds,
    Fired,
)

# The columns of a feed's row: its reference, then its test (river's running mean and
# its count, the two cumulative sums and their extremes).
COLUMNS = (*REFERENCE, "n", "x_mean", "up", "down", "min_up", "max_down")
N, X_MEAN, UP, DOWN, MIN_UP, MAX_DOWN = range(len(REFERENCE), len(COLUMNS))
FRESH = np.array([0, 0, 0, 0, 0, 0, 0, 0, np.inf, -1], dtype=np.float64)  # a new row


@dataclass(frozen=True)
class PageHinkleyParams:
    """river's `drift.PageHinkley` parameters (two-sided), as plain numbers."""

    min_instances: int
    delta: float
    threshold: float
    alpha: float


class PageHinkleyFeeds(ArrayFeeds):
    """One signal's feeds, by series name, with a Page-Hinkley test each.

    A series that steps from 0 to 3 at row 100, tested raw (warmup 0), as river's
    `PageHinkley(min_instances=30, delta=1.0, threshold=40.0, alpha=1.0)` fed the same
    values fires, 24 values after the step:

    >>> feeds = PageHinkleyFeeds(PageHinkleyParams(30, 1.0, 40.0, 1.0), warmup=0)
    >>> values = np.r_[np.zeros(100), np.full(100, 3.0)]
    >>> names, slots = np.full(200, "a", dtype=object), np.zeros(200, dtype=np.int64)
    >>> feeds.update(names, slots, values)[0].tolist()
    [123]
    """

    kind = "page_hinkley"
    columns = COLUMNS
    fresh = FRESH

    def __init__(self, params: PageHinkleyParams, warmup: int) -> None:
        self.params = params
        super().__init__(warmup)

    def _test(self, f: I64, state: F64, x: F64) -> Fired:
        """river's PageHinkley.update on each row's test, in place (see module doc)."""
        p = self.params
        n = state[:, N] + 1.0
        x_mean = state[:, X_MEAN]
        x_mean = x_mean + (1.0 / n) * (x - x_mean)
        dev = x - x_mean
        up = p.alpha * state[:, UP] + dev - p.delta
        down = p.alpha * state[:, DOWN] + dev + p.delta
        min_up = np.minimum(state[:, MIN_UP], up)
        max_down = np.maximum(state[:, MAX_DOWN], down)
        state[:, N], state[:, X_MEAN], state[:, UP], state[:, DOWN] = n, x_mean, up, down
        state[:, MIN_UP], state[:, MAX_DOWN] = min_up, max_down
        fired: Fired = (n >= p.min_instances) & (
            (up - min_up > p.threshold) | (max_down - down > p.threshold)
        )
        return fired

    def adopt(self, name: str, feed: Any) -> bool:
        """Take over a feed of the per-value path (`drift._Feed`, from a checkpoint
        written before feeds were arrays) with its river PageHinkley; False where it
        cannot (another detector, or a warm-up of another length): it starts afresh."""
        warm, detector = feed.warm, feed.detector
        if warm is not None and (self.width == 0 or len(warm) >= self.width):
            return False
        if detector is not None and type(detector).__name__ != "PageHinkley":
            return False
        if name not in self.ids:
            self._add([name])
        i = self.ids[name]
        if warm is not None:
            self.warm_n[i] = len(warm)
            self.warm[i, : len(warm)] = warm
            return True
        row = FRESH.copy()
        row[[MEAN, VAR, RECENT, COUNT]] = feed.mean, feed.var, feed.recent, feed.count
        if not detector.drift_detected:  # river resets a detector that fired first
            row[[N, X_MEAN]] = detector._x_mean.n, detector._x_mean._mean
            row[[UP, DOWN]] = detector._sum_increase, detector._sum_decrease
            row[[MIN_UP, MAX_DOWN]] = detector._min_increase, detector._max_decrease
        self.warm_n[i], self.state[i] = -1, row
        return True
