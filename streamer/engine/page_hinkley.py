"""Page-Hinkley drift feeds for many series at once: state in arrays, one row per feed.

The same feeds as the per-value path (`streamer.engine.river_feeds`) with a river
`drift.PageHinkley` each (reference learnt over `warmup` values, standardised and
clipped values, re-armed after a detection), and the same detections, but stepped with
numpy over every series of a batch together: rank by rank, the r-th value of every
series in one step. river's update, for each feed, is

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
from numpy.typing import NDArray

from models.base import grown, ranks
from models.series_rows import Rows
from streamer.engine.drift_reference import CLIP, MIN_WEIGHT, RECENT_WEIGHT, references

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]

# The columns of a feed's row in `PageHinkleyFeeds.state`: its reference (mean and
# variance, the values in it) and recent level, then its test (river's running mean
# and its count, the two cumulative sums and their extremes).
COLUMNS = ("mean", "var", "recent", "count", "n", "x_mean", "up", "down", "min_up", "max_down")
MEAN, VAR, RECENT, COUNT, N, X_MEAN, UP, DOWN, MIN_UP, MAX_DOWN = range(len(COLUMNS))
FRESH = np.array([0, 0, 0, 0, 0, 0, 0, 0, np.inf, -1], dtype=np.float64)  # a new row


@dataclass(frozen=True)
class PageHinkleyParams:
    """river's `drift.PageHinkley` parameters (two-sided), as plain numbers."""

    min_instances: int
    delta: float
    threshold: float
    alpha: float


class PageHinkleyFeeds:
    """One signal's feeds, by series name, with a Page-Hinkley test each. `update` takes
    a batch's values and returns the rows whose test fired, with the signal's recent
    level there (in reference sds); those feeds re-arm.

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

    def __init__(self, params: PageHinkleyParams, warmup: int) -> None:
        self.params = params
        self.warmup = warmup
        self.width = max(2, warmup) if warmup else 0  # values that set a reference
        self._empty()

    def _empty(self) -> None:
        self.ids: dict[str, int] = {}  # series name -> row of the arrays below
        self.names: list[str] = []
        self.state = np.zeros((0, len(COLUMNS)))  # per feed: COLUMNS (counts exact)
        self.warm_n = np.zeros(0, dtype=np.int64)  # values in `warm`; -1 once armed
        self.warm = np.zeros((0, self.width))
        self.slot_ids = np.zeros(0, dtype=np.int64)  # the feed last seen at each slot
        self.slot_names = np.zeros(0, dtype=object)  # and its name

    def __len__(self) -> int:
        return len(self.names)

    def update(self, names: NDArray[np.object_], slots: I64, values: F64) -> tuple[I64, F64]:
        """Feed finite values, each series' in time order; the rows that fired and the
        signal's recent level at each."""
        if not len(values):
            return np.empty(0, dtype=np.int64), np.empty(0)
        ids = self._ids(names, slots)
        fired: list[I64] = []
        levels: list[F64] = []
        distinct = len(ids) < 2 or np.bincount(ids).max() == 1
        with np.errstate(over="ignore", invalid="ignore"):  # as Python floats: inf, nan
            for rows in [np.arange(len(ids))] if distinct else _rank_groups(ids):
                f, x = ids[rows], values[rows]
                if self.width:
                    warming = self.warm_n[f] >= 0
                    learning = np.count_nonzero(warming)
                    if learning:
                        self._warm(f[warming], x[warming])
                        if learning == len(f):
                            continue
                        rows, f, x = rows[~warming], f[~warming], x[~warming]
                hit, recent = self._step(f, x)
                if np.count_nonzero(hit):
                    fired.append(rows[hit])
                    levels.append(recent[hit])
                    self._rearm(f[hit])
        if not fired:
            return np.empty(0, dtype=np.int64), np.empty(0)
        return np.concatenate(fired), np.concatenate(levels)

    def _ids(self, names: NDArray[np.object_], slots: I64) -> I64:
        """Each row's feed (a new series gets one). Kept per slot, so a name is looked
        up only when its slot last held another series (or none)."""
        if len(self.slot_ids) <= slots.max():
            self.slot_ids = grown(self.slot_ids, int(slots.max()) + 1)
            self.slot_names = grown(self.slot_names, int(slots.max()) + 1, None)
        ids = self.slot_ids[slots]
        stale = np.flatnonzero(self.slot_names[slots] != names)
        if len(stale):
            known = self.ids
            moved = names[stale].tolist()
            new = list(dict.fromkeys(name for name in moved if name not in known))
            if new:
                self._add(new)
            ids[stale] = [known[name] for name in moved]
            # Per slot, the series of its last row is the one it holds now.
            held, last = np.unique(slots[stale][::-1], return_index=True)
            last = stale[len(stale) - 1 - last]
            self.slot_ids[held], self.slot_names[held] = ids[last], names[last]
        return ids

    def take_rows(self, names: list[str]) -> Rows:
        """These series' feeds, one row each (fresh ones for series not fed yet)."""
        f = self._feeds_of(names)
        return {"state": self.state[f], "warm_n": self.warm_n[f], "warm": self.warm[f]}

    def put_rows(self, names: list[str], rows: Rows) -> None:
        f = self._feeds_of(names)
        self.state[f], self.warm_n[f], self.warm[f] = rows["state"], rows["warm_n"], rows["warm"]

    def drop(self, names: list[str]) -> None:
        """Forget these series (their rows are reused if they come back)."""
        self._rearm(self._feeds_of(names))

    def _feeds_of(self, names: list[str]) -> I64:
        self._add([name for name in dict.fromkeys(names) if name not in self.ids])
        return np.array([self.ids[name] for name in names], dtype=np.int64)

    def _add(self, names: list[str]) -> None:
        start, stop = len(self.names), len(self.names) + len(names)
        self.ids.update(zip(names, range(start, stop), strict=True))
        self.names.extend(names)
        self.state = grown(self.state, stop)
        self.warm_n = grown(self.warm_n, stop)
        self.warm = grown(self.warm, stop)
        self._rearm(np.arange(start, stop))

    def _rearm(self, f: I64) -> None:
        """Start these feeds afresh: learning a reference (or, warmup 0, testing raw
        values), with a fresh test."""
        self.warm_n[f] = 0 if self.width else -1
        self.state[f] = FRESH

    def _warm(self, f: I64, x: F64) -> None:
        """Add a value to these learning feeds; those with `width` values take them as
        their reference, and their test starts."""
        at = self.warm_n[f]
        self.warm[f, at] = x
        self.warm_n[f] = at + 1
        done = f[at + 1 >= self.width]
        if len(done):
            state = np.tile(FRESH, (len(done), 1))
            state[:, MEAN], state[:, VAR] = references(self.warm[done])
            state[:, COUNT] = self.width
            self.state[done] = state
            self.warm_n[done] = -1

    def _step(self, f: I64, x: F64) -> tuple[NDArray[np.bool_], F64]:
        """One value for each of these armed feeds (distinct): update the reference and
        the test; whether the test fired, and the recent level."""
        state = self.state[f]
        mean, var = state[:, MEAN].copy(), state[:, VAR].copy()
        count = state[:, COUNT] + 1.0
        sd = np.sqrt(var)
        flat = sd == 0
        if np.count_nonzero(flat):
            sd[flat] = 1e-12 * (1.0 + np.abs(mean[flat]))
        z = (x - mean) / sd
        z[count <= 2] = 0.0
        clipped = np.minimum(np.maximum(z, -CLIP), CLIP)
        recent = state[:, RECENT]
        recent += RECENT_WEIGHT * (z - recent)
        weight = np.maximum(1.0 / count, MIN_WEIGHT)
        delta = clipped * sd if self.warmup else x - mean
        state[:, MEAN] = mean + weight * delta
        state[:, VAR] = (1.0 - weight) * (var + weight * delta * delta)
        state[:, COUNT] = count
        fired = self._test(state, clipped if self.warmup else x)
        self.state[f] = state
        return fired, recent

    def _test(self, state: F64, x: F64) -> NDArray[np.bool_]:
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
        fired: NDArray[np.bool_] = (n >= p.min_instances) & (
            (up - min_up > p.threshold) | (max_down - down > p.threshold)
        )
        return fired

    def state_dict(self) -> dict[str, Any]:
        """Plain values and arrays: the names, each feed's reference and test (one array
        per column), and the values of the references still being learnt."""
        k = len(self.names)
        state: dict[str, Any] = {"kind": self.kind, "names": list(self.names)}
        state.update({key: self.state[:k, i].copy() for i, key in enumerate(COLUMNS)})
        state["count"] = state["count"].astype(np.int64)
        state["warm_n"] = self.warm_n[:k].copy()
        state["warm"] = self.warm[:k][self._learnt(k)]  # each feed's values, one after another
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._empty()
        self._add(list(state["names"]))
        k = len(self.names)
        for i, key in enumerate(COLUMNS):
            self.state[:k, i] = state[key]
        self.warm_n[:k] = state["warm_n"]
        self.warm[:k][self._learnt(k)] = state["warm"]

    def _learnt(self, k: int) -> NDArray[np.bool_]:
        """[feeds, width]: which values of the first k feeds' warm-up buffers are set."""
        learnt: NDArray[np.bool_] = np.arange(self.width) < self.warm_n[:k, None]
        return learnt

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


def _rank_groups(ids: I64) -> list[I64]:
    """The rows of each rank (the r-th row of every feed), whatever the rows' order."""
    order = np.argsort(ids, kind="stable")
    rank = np.empty(len(ids), dtype=np.int64)
    rank[order] = ranks(ids[order])
    by_rank = np.argsort(rank, kind="stable")
    return np.split(by_rank, np.cumsum(np.bincount(rank))[:-1])
