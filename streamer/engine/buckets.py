"""Per-(series slot, step) buckets as parallel arrays, and the pure numpy that builds,
merges, aggregates and fills them. Apart from `window.py`, which owns the per-slot state
and the closing rules, so the arithmetic can be read (and checked) on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

Aggregation = Literal["last", "mean", "sum", "ohlc"]
I64 = NDArray[np.int64]
F64 = NDArray[np.float64]

# Sums are kept times 2**-32, an exact scaling: a step's sum of up to 2**32 finite values
# cannot overflow, so their mean is finite (two values of 1.5e308 once made the mean inf
# and the step's point vanished). Only magnitudes below about 1e-298 lose precision.
SUM_SCALE = 2.0**-32
ACC_FIELDS = ("first_t", "first_v", "last_t", "last_v", "total", "count", "high", "low")


@dataclass
class Groups:
    """Aggregated buckets as parallel arrays: one entry per (slot, step)."""

    slot: I64
    step: I64
    first_t: I64
    first_v: F64
    last_t: I64
    last_v: F64
    total: F64
    count: I64
    high: F64
    low: F64

    def take(self, index: Any) -> Groups:
        return Groups(*(getattr(self, name)[index] for name in ("slot", "step", *ACC_FIELDS)))

    @staticmethod
    def concat(parts: list[Groups]) -> Groups:
        names = ("slot", "step", *ACC_FIELDS)
        return Groups(*(np.concatenate([getattr(p, n) for p in parts]) for n in names))


def acc_dtype(name: str) -> type:
    """The dtype of the accumulator `name` (one of ACC_FIELDS)."""
    return np.int64 if name in ("first_t", "last_t", "count") else np.float64


def group_events(slots: I64, steps: I64, times: I64, values: F64) -> Groups:
    """Aggregate events into one group per (slot, step), keeping arrival order for ties."""
    arrival = np.arange(len(slots))
    order = np.lexsort((arrival, times, steps, slots))
    slots, steps, times, values = slots[order], steps[order], times[order], values[order]
    starts = np.flatnonzero(np.r_[True, (slots[1:] != slots[:-1]) | (steps[1:] != steps[:-1])])
    ends = np.r_[starts[1:], len(slots)] - 1
    return Groups(
        slot=slots[starts],
        step=steps[starts],
        first_t=times[starts],
        first_v=values[starts],
        last_t=times[ends],
        last_v=values[ends],
        total=np.add.reduceat(values * SUM_SCALE, starts),
        count=np.diff(np.r_[starts, len(slots)]),
        high=np.maximum.reduceat(values, starts),
        low=np.minimum.reduceat(values, starts),
    )


def merge_twins(g: Groups) -> Groups:
    """Sort by (slot, step) and merge an open bucket with the batch's group of the same step.

    Open buckets come first in g, so in a twin pair the first entry arrived earlier.
    """
    order = np.lexsort((np.arange(len(g.slot)), g.step, g.slot))
    g = g.take(order)
    twin = np.flatnonzero((g.slot[1:] == g.slot[:-1]) & (g.step[1:] == g.step[:-1]))
    if len(twin) == 0:
        return g
    a, b = twin, twin + 1
    later_first = g.first_t[b] < g.first_t[a]
    g.first_t[a] = np.where(later_first, g.first_t[b], g.first_t[a])
    g.first_v[a] = np.where(later_first, g.first_v[b], g.first_v[a])
    newer_last = g.last_t[b] >= g.last_t[a]
    g.last_t[a] = np.where(newer_last, g.last_t[b], g.last_t[a])
    g.last_v[a] = np.where(newer_last, g.last_v[b], g.last_v[a])
    g.total[a] += g.total[b]
    g.count[a] += g.count[b]
    g.high[a] = np.maximum(g.high[a], g.high[b])
    g.low[a] = np.minimum(g.low[a], g.low[b])
    keep = np.ones(len(g.slot), dtype=bool)
    keep[b] = False
    return g.take(keep)


def aggregate(g: Groups, aggregation: Aggregation) -> F64:
    """Each group's step values, [n, 1] (or [n, 4] for ohlc); a sum may overflow to inf."""
    if aggregation == "last":
        return g.last_v[:, None]
    if aggregation == "mean":  # no overflow: |mean| <= the largest |value|
        return (g.total * (1.0 / SUM_SCALE / g.count))[:, None]
    if aggregation == "sum":  # may overflow: the window sets such steps aside
        with np.errstate(over="ignore"):
            return (g.total / SUM_SCALE)[:, None]
    return np.stack([g.first_v, g.high, g.low, g.last_v], axis=1)


def fill_values(last: F64, aggregation: Aggregation) -> F64:
    """Values of an empty step after a step whose values were `last`."""
    if aggregation == "sum":
        return np.zeros_like(last)  # nothing happened: the sum is 0
    if aggregation == "ohlc":
        return np.repeat(last[:, 3:4], 4, axis=1)  # flat at the previous close
    return last


def expand(slots: I64, starts: I64, counts: I64, values: F64) -> tuple[I64, I64, F64]:
    """Rows (slot, starts[i] + j, values[i]) for j < counts[i], for every i.

    >>> slot, step, value = expand(
    ...     np.array([7, 9]), np.array([10, 20]), np.array([2, 1]), np.array([[1.5], [2.5]])
    ... )
    >>> slot.tolist(), step.tolist(), value.ravel().tolist()
    ([7, 7, 9], [10, 11, 20], [1.5, 1.5, 2.5])
    """
    total = int(counts.sum())
    index = np.repeat(np.arange(len(counts)), counts)
    offset = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    return slots[index], starts[index] + offset, values[index]
