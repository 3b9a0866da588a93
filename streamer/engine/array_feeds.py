"""Drift feeds for many series at once: state in arrays, one row per feed.

The same feeds as the per-value path (`streamer.engine.river_feeds`): each (signal,
series) learns its reference over `warmup` values, then feeds its test each value
standardised and clipped (or raw, warmup 0), and re-arms after a detection. Here every
series of a batch is stepped together with numpy, rank by rank: the r-th value of every
series in one step. A subclass holds one test (`page_hinkley`, `kswin`): the columns it
adds to each feed's row and how a value updates them.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from models.base import grown, ranks
from models.series_rows import Rows
from streamer.engine.drift_reference import CLIP, MIN_WEIGHT, RECENT_WEIGHT, references

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]
Fired = NDArray[np.bool_]

# The first columns of every feed's row in `ArrayFeeds.state`: its reference (mean and
# variance, the values in it) and its recent level; a test's own columns follow.
REFERENCE = ("mean", "var", "recent", "count")
MEAN, VAR, RECENT, COUNT = range(len(REFERENCE))


class ArrayFeeds:
    """One signal's feeds, by series name, with a test each. `update` takes a batch's
    values and returns the rows whose test fired, with the signal's recent level there
    (in reference sds); those feeds re-arm."""

    kind: str  # what `state_dict` holds, so a checkpoint of another kind is not loaded
    columns: ClassVar[tuple[str, ...]]  # REFERENCE, then the test's
    fresh: ClassVar[F64]  # a new feed's row

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.width = max(2, warmup) if warmup else 0  # values that set a reference
        self._empty()

    def _empty(self) -> None:
        self.ids: dict[str, int] = {}  # series name -> row of the arrays below
        self.names: list[str] = []
        self.state = np.zeros((0, len(self.columns)))  # per feed: `columns` (counts exact)
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
        self._grow(stop)
        self._rearm(np.arange(start, stop))

    def _grow(self, feeds: int) -> None:
        """Make room for this many feeds in the test's own arrays, if it has any."""

    def _rearm(self, f: I64) -> None:
        """Start these feeds afresh: learning a reference (or, warmup 0, testing raw
        values), with a fresh test."""
        self.warm_n[f] = 0 if self.width else -1
        self.state[f] = self.fresh

    def _warm(self, f: I64, x: F64) -> None:
        """Add a value to these learning feeds; those with `width` values take them as
        their reference, and their test starts."""
        at = self.warm_n[f]
        self.warm[f, at] = x
        self.warm_n[f] = at + 1
        done = f[at + 1 >= self.width]
        if len(done):
            state = np.tile(self.fresh, (len(done), 1))
            state[:, MEAN], state[:, VAR] = references(self.warm[done])
            state[:, COUNT] = self.width
            self.state[done] = state
            self.warm_n[done] = -1

    def _step(self, f: I64, x: F64) -> tuple[Fired, F64]:
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
        fired = self._test(f, state, clipped if self.warmup else x)
        self.state[f] = state
        return fired, recent

    def _test(self, f: I64, state: F64, x: F64) -> Fired:
        """Feed `x` to the tests of feeds `f` (distinct), whose rows `state` holds and
        the caller writes back; which of them fired."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Plain values and arrays: the names, each feed's reference and test (one array
        per column), and the values of the references still being learnt."""
        k = len(self.names)
        state: dict[str, Any] = {"kind": self.kind, "names": list(self.names)}
        state.update({key: self.state[:k, i].copy() for i, key in enumerate(self.columns)})
        state["count"] = state["count"].astype(np.int64)
        state["warm_n"] = self.warm_n[:k].copy()
        state["warm"] = self.warm[:k][self._learnt(k)]  # each feed's values, one after another
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._empty()
        self._add(list(state["names"]))
        k = len(self.names)
        for i, key in enumerate(self.columns):
            self.state[:k, i] = state[key]
        self.warm_n[:k] = state["warm_n"]
        self.warm[:k][self._learnt(k)] = state["warm"]

    def _learnt(self, k: int) -> NDArray[np.bool_]:
        """[feeds, width]: which values of the first k feeds' warm-up buffers are set."""
        learnt: NDArray[np.bool_] = np.arange(self.width) < self.warm_n[:k, None]
        return learnt

    def adopt(self, name: str, feed: Any) -> bool:
        """Take over a feed of the per-value path (from a checkpoint written before
        feeds were arrays); False where it cannot: it starts afresh."""
        return False


def _rank_groups(ids: I64) -> list[I64]:
    """The rows of each rank (the r-th row of every feed), whatever the rows' order."""
    order = np.argsort(ids, kind="stable")
    rank = np.empty(len(ids), dtype=np.int64)
    rank[order] = ranks(ids[order])
    by_rank = np.argsort(rank, kind="stable")
    return np.split(by_rank, np.cumsum(np.bincount(rank))[:-1])
