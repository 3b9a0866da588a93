"""The windowing buffer: irregular events in, regular per-series steps out.

Each series has event-time buckets of `step`. Its watermark is its largest event time
minus `allowed_lateness`; a step closes when the watermark passes the step's end.
Watermarks advance at micro-batch boundaries, so within one `add` the order of events
does not matter; an event whose step closed in an earlier batch is rejected as late.
Empty steps are forward-filled up to `max_gap`; a longer gap marks the next step `reset`
(the model starts that series afresh). A series with no events for `idle_close_after`
of processing time closes its open steps. At most `max_series` series are live; the
least recently updated are handed to a `SpillStore` and restored when they return.

All work is vectorised over the batch: one sort, a few `reduceat`s, no per-event or
per-series Python loop beyond the dict lookup that maps series ids to slots.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from streamer.core.records import StepBatch, concat_batches

Aggregation = Literal["last", "mean", "sum", "ohlc"]
NO_STEP = np.int64(-1)
I64 = NDArray[np.int64]
F64 = NDArray[np.float64]

# Sums are kept times 2**-32, an exact scaling: a step's sum of up to 2**32 finite values
# cannot overflow, so their mean is finite (two values of 1.5e308 once made the mean inf
# and the step's point vanished). Only magnitudes below about 1e-298 lose precision.
SUM_SCALE = 2.0**-32
_ACC_FIELDS = ("first_t", "first_v", "last_t", "last_v", "total", "count", "high", "low")


@dataclass(frozen=True)
class AddResult:
    """What one `add` produced: closed steps, and the indices of events rejected as late."""

    closed: StepBatch
    late: I64


class SpillStore(Protocol):
    """Where evicted series' window state waits until the series returns."""

    def put(self, series: str, state: dict[str, Any]) -> None: ...

    def pop(self, series: str) -> dict[str, Any] | None: ...


@dataclass
class MemorySpill:
    """A SpillStore in a dict (tests; small deployments)."""

    items: dict[str, dict[str, Any]] = field(default_factory=dict)

    def put(self, series: str, state: dict[str, Any]) -> None:
        self.items[series] = state

    def pop(self, series: str) -> dict[str, Any] | None:
        return self.items.pop(series, None)


@dataclass
class _Groups:
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

    def take(self, index: Any) -> _Groups:
        return _Groups(*(getattr(self, name)[index] for name in ("slot", "step", *_ACC_FIELDS)))

    @staticmethod
    def concat(parts: list[_Groups]) -> _Groups:
        names = ("slot", "step", *_ACC_FIELDS)
        return _Groups(*(np.concatenate([getattr(p, n) for p in parts]) for n in names))


class WindowBuffer:
    """Per-series event-time windows over preallocated numpy arrays (see module doc)."""

    def __init__(
        self,
        *,
        step_ns: int,
        aggregation: Aggregation = "last",
        allowed_lateness_ns: int = 0,
        max_gap: int = 5,
        idle_close_after: float = 30.0,
        max_series: int = 10_000,
        spill: SpillStore | None = None,
    ) -> None:
        self.step_ns = step_ns
        self.aggregation = aggregation
        self.allowed_lateness_ns = allowed_lateness_ns
        self.max_gap = max_gap
        self.idle_close_after = idle_close_after
        self.max_series = max_series
        self.spill: SpillStore = spill if spill is not None else MemorySpill()
        self.width = 4 if aggregation == "ohlc" else 1
        # Open steps of a series lie within lateness of its newest event: this many fit.
        self.open_slots = math.ceil(allowed_lateness_ns / step_ns) + 2
        capacity, k = max_series, self.open_slots
        self.slot_of: dict[str, int] = {}
        self.series_of = np.full(capacity, None, dtype=object)
        self.kind_of = np.full(capacity, None, dtype=object)
        # A series new to its slot: its next row is a reset, as models hold no state for it.
        self.fresh = np.zeros(capacity, dtype=bool)
        self.free = list(range(capacity - 1, -1, -1))
        self.touched = np.zeros(capacity)
        self.max_time = np.full(capacity, -1, dtype=np.int64)
        self.last_closed = np.full(capacity, NO_STEP, dtype=np.int64)
        self.last_real = np.full(capacity, NO_STEP, dtype=np.int64)
        self.last_value = np.zeros((capacity, self.width))
        self.open_step = np.full((capacity, k), NO_STEP, dtype=np.int64)
        self.acc: dict[str, NDArray[Any]] = {
            name: np.zeros((capacity, k), dtype=_acc_dtype(name)) for name in _ACC_FIELDS
        }
        # Steps whose aggregate a float cannot hold (a sum beyond 1.8e308): (series, step
        # start in ns, events). They close as if empty; the pipeline dead-letters them.
        self.unrepresentable: list[tuple[str, int, int]] = []

    # --- public -------------------------------------------------------------------------

    def add(
        self,
        series: list[str],
        kinds: list[str] | str,
        times_ns: I64,
        values: F64,
        now: float,
    ) -> AddResult:
        """Add a micro-batch of events; return the steps it closed and the late events.

        `now` is processing time in seconds (for idle closing and eviction order).
        """
        times_ns = np.asarray(times_ns, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        if len(series) > self.max_series and len(set(series)) > self.max_series:
            # More series than fit at once: add in halves, so none is evicted mid-batch.
            half = len(series) // 2
            kind_a, kind_b = (
                (kinds, kinds) if isinstance(kinds, str) else (kinds[:half], kinds[half:])
            )
            a = self.add(series[:half], kind_a, times_ns[:half], values[:half], now)
            b = self.add(series[half:], kind_b, times_ns[half:], values[half:], now)
            return AddResult(concat_batches([a.closed, b.closed]), np.r_[a.late, b.late + half])
        slots = self._slots_for(series, kinds, now)
        steps = times_ns // self.step_ns
        late = steps <= self.last_closed[slots]
        keep = ~late
        slots, steps, times_ns, values = slots[keep], steps[keep], times_ns[keep], values[keep]
        if len(slots) == 0:
            return AddResult(self._empty(), np.flatnonzero(late))
        self.touched[slots] = now
        np.maximum.at(self.max_time, slots, times_ns)
        touched = np.unique(slots)
        groups = _Groups.concat(
            [self._take_open(touched), _group_events(slots, steps, times_ns, values)]
        )
        groups = _merge_twins(groups)
        close_upto = (self.max_time - self.allowed_lateness_ns) // self.step_ns - 1
        closed = self._close(groups, touched, close_upto)
        return AddResult(closed, np.flatnonzero(late))

    def close_idle(self, now: float) -> StepBatch:
        """Close every open step of series with no events for idle_close_after seconds."""
        has_open = (self.open_step != NO_STEP).any(axis=1)
        idle = np.flatnonzero(has_open & (self.touched <= now - self.idle_close_after))
        if len(idle) == 0:
            return self._empty()
        groups = self._take_open(idle)
        close_upto = np.full_like(self.last_closed, NO_STEP)
        np.maximum.at(close_upto, groups.slot, groups.step)
        return self._close(groups, idle, close_upto)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (evicted series are in the spill)."""
        state: dict[str, Any] = {name: getattr(self, name).copy() for name in _STATE_ARRAYS}
        state["acc"] = {name: a.copy() for name, a in self.acc.items()}
        state["slot_of"] = dict(self.slot_of)
        state["free"] = list(self.free)
        state["settings"] = (self.step_ns, self.aggregation, self.open_slots)
        state["sum_scale"] = SUM_SCALE
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from `state_dict()` of a window with the same settings.

        Older checkpoints also hold a history ring and its length, which are ignored.
        """
        mine = (self.step_ns, self.aggregation, self.open_slots)
        theirs = tuple(state["settings"])
        if len(theirs) == 4:  # (step_ns, length, aggregation, open steps)
            theirs = (theirs[0], *theirs[2:])
        if theirs != mine:
            raise ValueError(
                f"the checkpoint's window (step_ns, aggregation, open steps) "
                f"{theirs} differs from the config's {mine}; remove the "
                "checkpoint to start afresh with the new window settings"
            )
        if len(state["max_time"]) != self.max_series:
            raise ValueError(
                f"the checkpoint holds {len(state['max_time'])} series slots, the config's "
                f"max_series is {self.max_series}; set it back or remove the checkpoint"
            )
        for name in _STATE_ARRAYS:
            setattr(self, name, state[name].copy())
        self.acc = {name: a.copy() for name, a in state["acc"].items()}
        self.acc["total"] *= SUM_SCALE / state.get("sum_scale", 1.0)  # older checkpoints
        self.slot_of = dict(state["slot_of"])
        self.free = list(state["free"])

    @property
    def live_series(self) -> int:
        return len(self.slot_of)

    # --- slots, eviction and spill ------------------------------------------------------

    def _slots_for(self, series: list[str], kinds: list[str] | str, now: float) -> I64:
        slot_of = self.slot_of
        slots = np.fromiter((slot_of.get(s, -1) for s in series), dtype=np.int64, count=len(series))
        new = np.flatnonzero(slots < 0)
        if len(new):
            # Series of this batch are never the ones evicted to make room.
            self.touched[slots[slots >= 0]] = np.inf
            for i in new:
                name = series[i]
                slot = slot_of.get(name)
                if slot is None:
                    kind = kinds if isinstance(kinds, str) else kinds[i]
                    slot = self._assign(name, kind)
                    self.touched[slot] = np.inf
                slots[i] = slot
            self.touched[slots] = now
        return slots

    def _assign(self, name: str, kind: str) -> int:
        if not self.free:
            self._evict(int(np.argmin(self.touched)))
        slot = self.free.pop()
        self.slot_of[name] = slot
        self.series_of[slot] = name
        self.kind_of[slot] = kind
        self.fresh[slot] = True
        state = self.spill.pop(name)
        if state is not None:
            self._restore(slot, state)
        return slot

    def _evict(self, slot: int) -> None:
        name = self.series_of[slot]
        self.spill.put(name, self._snapshot(slot))
        del self.slot_of[name]
        self._clear(slot)
        self.free.append(slot)

    def _snapshot(self, slot: int) -> dict[str, Any]:
        state: dict[str, Any] = {name: np.copy(getattr(self, name)[slot]) for name in _SLOT_ARRAYS}
        state["acc"] = {name: np.copy(a[slot]) for name, a in self.acc.items()}
        return state

    def _restore(self, slot: int, state: dict[str, Any]) -> None:
        for name in _SLOT_ARRAYS:
            getattr(self, name)[slot] = state[name]
        for name, a in self.acc.items():
            a[slot] = state["acc"][name]

    def _clear(self, slot: int) -> None:
        self.series_of[slot] = self.kind_of[slot] = None
        self.fresh[slot] = False
        self.max_time[slot] = -1
        self.last_closed[slot] = self.last_real[slot] = self.open_step[slot] = NO_STEP
        self.touched[slot] = 0

    # --- buckets ------------------------------------------------------------------------

    def _take_open(self, slots: I64) -> _Groups:
        """Remove and return the open buckets of slots, sorted by (slot, step)."""
        open_step = self.open_step[slots]
        row, col = np.nonzero(open_step != NO_STEP)
        order = np.lexsort((open_step[row, col], slots[row]))
        row, col = row[order], col[order]
        picked = slots[row]
        groups = _Groups(
            picked, open_step[row, col], *(self.acc[name][picked, col] for name in _ACC_FIELDS)
        )
        self.open_step[picked, col] = NO_STEP
        return groups

    def _put_open(self, groups: _Groups) -> None:
        col = groups.step % self.open_slots
        if (self.open_step[groups.slot, col] != NO_STEP).any():  # pragma: no cover - a bug
            raise AssertionError("open bucket collision")
        self.open_step[groups.slot, col] = groups.step
        for name in _ACC_FIELDS:
            self.acc[name][groups.slot, col] = getattr(groups, name)

    def _close(self, groups: _Groups, touched: I64, close_upto: I64) -> StepBatch:
        """Close groups at or below their slot's close_upto; keep the rest open."""
        closing = groups.step <= close_upto[groups.slot]
        self._put_open(groups.take(~closing))
        done = groups.take(closing)
        data_values = self._aggregate(done)
        finite = np.isfinite(data_values).all(axis=1)
        if not finite.all():
            lost = ~finite
            self.unrepresentable += zip(
                self.series_of[done.slot[lost]].tolist(),
                (done.step[lost] * self.step_ns).tolist(),
                done.count[lost].tolist(),
                strict=True,
            )
            done, data_values = done.take(finite), data_values[finite]
        upto = np.maximum(close_upto[touched], self.last_closed[touched])
        batch = self._emit(done, data_values, touched, upto)
        self.last_closed[touched] = upto
        return batch

    def _aggregate(self, g: _Groups) -> F64:
        if self.aggregation == "last":
            return g.last_v[:, None]
        if self.aggregation == "mean":  # no overflow: |mean| <= the largest |value|
            return (g.total * (1.0 / SUM_SCALE / g.count))[:, None]
        if self.aggregation == "sum":  # may overflow: _close sets such steps aside
            with np.errstate(over="ignore"):
                return (g.total / SUM_SCALE)[:, None]
        return np.stack([g.first_v, g.high, g.low, g.last_v], axis=1)

    def _fill_values(self, last: F64) -> F64:
        """Values of an empty step after a step whose values were `last`."""
        if self.aggregation == "sum":
            return np.zeros_like(last)  # nothing happened: the sum is 0
        if self.aggregation == "ohlc":
            return np.repeat(last[:, 3:4], 4, axis=1)  # flat at the previous close
        return last

    def _emit(self, done: _Groups, data_values: F64, touched: I64, upto: I64) -> StepBatch:
        """Rows for the closed data steps plus forward-filled empty steps, in order."""
        slot, step = done.slot, done.step  # sorted by (slot, step)
        # The real step before each data step: the previous one of the same slot, or the
        # slot's last real step from earlier batches.
        first_of_slot = np.ones(len(slot), dtype=bool)
        first_of_slot[1:] = slot[1:] != slot[:-1]
        prev = np.empty_like(step)
        prev[1:] = step[:-1]
        prev[first_of_slot] = self.last_real[slot[first_of_slot]]
        prev_values = np.empty_like(data_values)
        prev_values[1:] = data_values[:-1]
        prev_values[first_of_slot] = self.last_value[slot[first_of_slot]]
        gap = step - prev - 1
        reset = (prev == NO_STEP) | (gap > self.max_gap)
        # Fills before each data step (not those emitted by an earlier batch).
        fill_from = np.maximum(prev + 1, self.last_closed[slot] + 1)
        # Up to max_gap fills, also before a reset (as an earlier batch's trailing fills
        # would have been), none for a new series.
        fill_to = np.where(
            prev == NO_STEP, fill_from - 1, np.minimum(step - 1, prev + self.max_gap)
        )
        # Each slot's newest real step is now its last data step (prev and prev_values
        # above hold the old ones); update in place, only for the slots that closed one.
        last_real, last_value = self.last_real, self.last_value
        is_last = np.ones(len(slot), dtype=bool)
        is_last[:-1] = slot[1:] != slot[:-1]
        last_real[slot[is_last]] = step[is_last]
        last_value[slot[is_last]] = data_values[is_last]
        # Trailing fills after each touched slot's last real step, up to its watermark.
        has_real = last_real[touched] != NO_STEP
        t_slots = touched[has_real]
        t_from = np.maximum(last_real[t_slots] + 1, self.last_closed[t_slots] + 1)
        t_to = np.minimum(upto[has_real], last_real[t_slots] + self.max_gap)
        fill_slots = np.concatenate([slot, t_slots])
        starts = np.concatenate([fill_from, t_from])
        counts = np.maximum(np.concatenate([fill_to, t_to]) - starts + 1, 0)
        sources = np.concatenate([prev_values, last_value[t_slots]])
        f_slot, f_step, f_values = _expand(fill_slots, starts, counts, self._fill_values(sources))
        n_data, n_fill = len(slot), len(f_slot)
        all_slot = np.concatenate([slot, f_slot])
        all_step = np.concatenate([step, f_step])
        order = np.lexsort((all_step, all_slot))
        all_slot, all_step = all_slot[order], all_step[order]
        gap_reset = np.concatenate([reset, np.zeros(n_fill, bool)])[order]
        first_row = np.r_[True, all_slot[1:] != all_slot[:-1]] if len(all_slot) else gap_reset
        all_reset = gap_reset | (first_row & self.fresh[all_slot])
        self.fresh[all_slot] = False
        batch = StepBatch(
            slots=all_slot,
            series=self.series_of[all_slot],
            kinds=self.kind_of[all_slot],
            steps=all_step,
            values=np.concatenate([data_values, f_values])[order],
            filled=np.concatenate([np.zeros(n_data, bool), np.ones(n_fill, bool)])[order],
            reset=all_reset,
            step_ns=self.step_ns,
        )
        return batch

    def empty(self) -> StepBatch:
        """A batch of no steps (for outputs that carry only events)."""
        return self._empty()

    def _empty(self) -> StepBatch:
        return StepBatch(
            slots=np.empty(0, np.int64),
            series=np.empty(0, object),
            kinds=np.empty(0, object),
            steps=np.empty(0, np.int64),
            values=np.empty((0, self.width)),
            filled=np.empty(0, bool),
            reset=np.empty(0, bool),
            step_ns=self.step_ns,
        )


_SLOT_ARRAYS = (
    "max_time",
    "last_closed",
    "last_real",
    "last_value",
    "open_step",
)


_STATE_ARRAYS = (*_SLOT_ARRAYS, "series_of", "kind_of", "fresh", "touched")


def _acc_dtype(name: str) -> type:
    return np.int64 if name in ("first_t", "last_t", "count") else np.float64


def _group_events(slots: I64, steps: I64, times: I64, values: F64) -> _Groups:
    """Aggregate events into one group per (slot, step), keeping arrival order for ties."""
    arrival = np.arange(len(slots))
    order = np.lexsort((arrival, times, steps, slots))
    slots, steps, times, values = slots[order], steps[order], times[order], values[order]
    starts = np.flatnonzero(np.r_[True, (slots[1:] != slots[:-1]) | (steps[1:] != steps[:-1])])
    ends = np.r_[starts[1:], len(slots)] - 1
    return _Groups(
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


def _merge_twins(g: _Groups) -> _Groups:
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


def _expand(slots: I64, starts: I64, counts: I64, values: F64) -> tuple[I64, I64, F64]:
    """Rows (slot, starts[i] + j, values[i]) for j < counts[i], for every i."""
    total = int(counts.sum())
    index = np.repeat(np.arange(len(counts)), counts)
    offset = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    return slots[index], starts[index] + offset, values[index]
