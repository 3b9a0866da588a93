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
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streamer.core.records import F64, I64, StepBatch, concat_batches
from streamer.engine import buckets
from streamer.engine.buckets import Aggregation as Aggregation
from streamer.engine.spill import MemorySpill, SpillStore

NO_STEP = np.int64(-1)
# Runs of empty steps to fill: (slot, first step, last step, values they follow).
_Fills = tuple[I64, I64, I64, F64]


@dataclass(frozen=True)
class AddResult:
    """What one `add` produced: closed steps, and the indices of events rejected as late."""

    closed: StepBatch
    late: I64


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
            name: np.zeros((capacity, k), dtype=buckets.acc_dtype(name))
            for name in buckets.ACC_FIELDS
        }
        # Steps whose aggregate a float cannot hold (a sum beyond 1.8e308): (series, step
        # start in ns, events). They close as if empty; the pipeline dead-letters them.
        self.unrepresentable: list[tuple[str, int, int]] = []

    # --- public -------------------------------------------------------------------------

    def add(
        self, series: list[str], kinds: list[str] | str, times_ns: I64, values: F64, now: float
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
            return AddResult(self.empty(), np.flatnonzero(late))
        self.touched[slots] = now
        np.maximum.at(self.max_time, slots, times_ns)
        touched = np.unique(slots)
        groups = buckets.Groups.concat(
            [self._take_open(touched), buckets.group_events(slots, steps, times_ns, values)]
        )
        groups = buckets.merge_twins(groups)
        close_upto = (self.max_time - self.allowed_lateness_ns) // self.step_ns - 1
        closed = self._close(groups, touched, close_upto)
        return AddResult(closed, np.flatnonzero(late))

    def close_idle(self, now: float) -> StepBatch:
        """Close every open step of series with no events for idle_close_after seconds;
        at `now` infinite (the end of the data), every open step, idle closing on or off."""
        has_open = (self.open_step != NO_STEP).any(axis=1)
        quiet_since = math.inf if now == math.inf else now - self.idle_close_after
        idle = np.flatnonzero(has_open & (self.touched <= quiet_since))
        if len(idle) == 0:
            return self.empty()
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
        state["sum_scale"] = buckets.SUM_SCALE
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
        self.acc["total"] *= buckets.SUM_SCALE / state.get("sum_scale", 1.0)  # older checkpoints
        self.slot_of = dict(state["slot_of"])
        self.free = list(state["free"])

    @property
    def live_series(self) -> int:
        return len(self.slot_of)

    # --- moving series between processes -----------------------------------------------

    def take_series(self, names: list[str], now: float) -> tuple[I64, dict[str, Any]]:
        """These live series' slots and rows; `idle`: processing time since touched."""
        slots = np.array([self.slot_of[name] for name in names], dtype=np.int64)
        rows = {name: getattr(self, name)[slots].copy() for name in (*_SLOT_ARRAYS, "kind_of")}
        rows["acc"] = {name: a[slots].copy() for name, a in self.acc.items()}
        rows["idle"] = now - self.touched[slots]
        return slots, rows

    def put_series(self, names: list[str], rows: dict[str, Any], now: float) -> I64:
        """Take over series from `take_series` (at most max_series / 2); their slots."""
        slots = self._slots_for(names, list(rows["kind_of"]), now)
        for name in _SLOT_ARRAYS:
            getattr(self, name)[slots] = rows[name]
        for name, a in self.acc.items():
            a[slots] = rows["acc"][name]
        self.fresh[slots] = False  # the models take the rows too
        self.touched[slots] = now - rows["idle"]
        return slots

    def drop_series(self, names: list[str]) -> I64:
        """Forget these live series (they moved to another process); their freed slots."""
        slots = [self.slot_of.pop(name) for name in names]
        for slot in slots:
            self._clear(slot)
        self.free.extend(slots)
        return np.array(slots, dtype=np.int64)

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

    def _take_open(self, slots: I64) -> buckets.Groups:
        """Remove and return the open buckets of slots, sorted by (slot, step)."""
        open_step = self.open_step[slots]
        row, col = np.nonzero(open_step != NO_STEP)
        order = np.lexsort((open_step[row, col], slots[row]))
        row, col = row[order], col[order]
        picked = slots[row]
        groups = buckets.Groups(
            picked,
            open_step[row, col],
            *(self.acc[name][picked, col] for name in buckets.ACC_FIELDS),
        )
        self.open_step[picked, col] = NO_STEP
        return groups

    def _put_open(self, groups: buckets.Groups) -> None:
        col = groups.step % self.open_slots
        if (self.open_step[groups.slot, col] != NO_STEP).any():  # pragma: no cover - a bug
            raise AssertionError("open bucket collision")
        self.open_step[groups.slot, col] = groups.step
        for name in buckets.ACC_FIELDS:
            self.acc[name][groups.slot, col] = getattr(groups, name)

    def _close(self, groups: buckets.Groups, touched: I64, close_upto: I64) -> StepBatch:
        """Close groups at or below their slot's close_upto; keep the rest open."""
        closing = groups.step <= close_upto[groups.slot]
        self._put_open(groups.take(~closing))
        done = groups.take(closing)
        data_values = buckets.aggregate(done, self.aggregation)
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

    def _emit(self, done: buckets.Groups, data_values: F64, touched: I64, upto: I64) -> StepBatch:
        """Rows for the closed data steps plus forward-filled empty steps, in order."""
        slot, step = done.slot, done.step  # sorted by (slot, step)
        prev, prev_values = self._previous_real(slot, step, data_values)
        reset = (prev == NO_STEP) | (step - prev - 1 > self.max_gap)
        before = self._fills_before(slot, step, prev, prev_values)
        self._remember_newest(slot, step, data_values)
        after = self._fills_after(touched, upto)
        f_slot, first, last, sources = (np.concatenate(p) for p in zip(before, after, strict=True))
        values = buckets.fill_values(sources, self.aggregation)
        fills = buckets.expand(f_slot, first, np.maximum(last - first + 1, 0), values)
        return self._ordered_batch((slot, step, data_values), reset, fills)

    def _previous_real(self, slot: I64, step: I64, values: F64) -> tuple[I64, F64]:
        """The real step before each data step and its values: the previous one of the
        same slot, or the slot's last real step from earlier batches (NO_STEP: none)."""
        first_of_slot = np.ones(len(slot), dtype=bool)
        first_of_slot[1:] = slot[1:] != slot[:-1]
        prev = np.empty_like(step)
        prev[1:] = step[:-1]
        prev[first_of_slot] = self.last_real[slot[first_of_slot]]
        prev_values = np.empty_like(values)
        prev_values[1:] = values[:-1]
        prev_values[first_of_slot] = self.last_value[slot[first_of_slot]]
        return prev, prev_values

    def _fills_before(self, slot: I64, step: I64, prev: I64, prev_values: F64) -> _Fills:
        """Empty steps to fill before each data step (not those an earlier batch emitted):
        up to max_gap, also before a reset (as an earlier batch's trailing fills would
        have been), none for a new series."""
        first = np.maximum(prev + 1, self.last_closed[slot] + 1)
        last = np.where(prev == NO_STEP, first - 1, np.minimum(step - 1, prev + self.max_gap))
        return slot, first, last, prev_values

    def _remember_newest(self, slot: I64, step: I64, values: F64) -> None:
        """Make each slot's newest real step its last data step here (sorted by slot)."""
        is_last = np.ones(len(slot), dtype=bool)
        is_last[:-1] = slot[1:] != slot[:-1]
        self.last_real[slot[is_last]] = step[is_last]
        self.last_value[slot[is_last]] = values[is_last]

    def _fills_after(self, touched: I64, upto: I64) -> _Fills:
        """Trailing empty steps after each touched slot's newest real step, up to its
        watermark (`upto`) and at most max_gap of them."""
        has_real = self.last_real[touched] != NO_STEP
        slots = touched[has_real]
        newest = self.last_real[slots]
        first = np.maximum(newest + 1, self.last_closed[slots] + 1)
        last = np.minimum(upto[has_real], newest + self.max_gap)
        return slots, first, last, self.last_value[slots]

    def _ordered_batch(
        self, data: tuple[I64, I64, F64], gap_reset: NDArray[np.bool_], fills: tuple[I64, I64, F64]
    ) -> StepBatch:
        """Data rows (slot, step, values) and fill rows as one batch sorted by (slot, step).
        A row is a reset after a long gap, and so is a series' first row in a new slot."""
        (slot, step, values), (f_slot, f_step, f_values) = data, fills
        n_data, n_fill = len(slot), len(f_slot)
        all_slot = np.concatenate([slot, f_slot])
        all_step = np.concatenate([step, f_step])
        order = np.lexsort((all_step, all_slot))
        all_slot, all_step = all_slot[order], all_step[order]
        gap_reset = np.concatenate([gap_reset, np.zeros(n_fill, bool)])[order]
        first_row = np.r_[True, all_slot[1:] != all_slot[:-1]] if len(all_slot) else gap_reset
        all_reset = gap_reset | (first_row & self.fresh[all_slot])
        self.fresh[all_slot] = False
        return StepBatch(
            slots=all_slot,
            series=self.series_of[all_slot],
            kinds=self.kind_of[all_slot],
            steps=all_step,
            values=np.concatenate([values, f_values])[order],
            filled=np.concatenate([np.zeros(n_data, bool), np.ones(n_fill, bool)])[order],
            reset=all_reset,
            step_ns=self.step_ns,
        )

    def empty(self) -> StepBatch:
        """A batch of no steps (for outputs that carry only events)."""
        ints, objects, flags = np.empty(0, np.int64), np.empty(0, object), np.empty(0, bool)
        values = np.empty((0, self.width))
        return StepBatch(ints, objects, objects, ints, values, flags, flags, self.step_ns)


_SLOT_ARRAYS = ("max_time", "last_closed", "last_real", "last_value", "open_step")


_STATE_ARRAYS = (*_SLOT_ARRAYS, "series_of", "kind_of", "fresh", "touched")
