"""Recent windows of every series, recorded in the serving scale, for retraining.

Per-series rings of recent steps would hold too little with many series (10k series in
50k steps is 5 steps each), so the buffer keeps whole windows: each series fills its
own short ring of the last `window` steps since its last reset, and every `stride` steps
a full window is copied into one shared store of `capacity` windows, oldest overwritten
first. A step is recorded as the forecaster saw it: the raw value, the value fed to the
scaler (the raw value, or a price's log return) and the scaler's mean and std after it,
so training reproduces exactly the serving inputs and targets. The steps of a window
are consecutive (a gap beyond max_gap is a reset), so its first step number gives the
time of each (calendar features). The ring is also what new weights replay to rebuild
each series' state (`recent`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models import series_rows
from models.base import grown
from models.series_rows import Rows

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]
F32 = NDArray[np.float32]
Mask = NDArray[np.bool_]

RAW, FED, MEAN, STD = 0, 1, 2, 3
CHANNELS = 4


@dataclass(frozen=True)
class Snapshot:
    """The stored windows, oldest first: [n, window, 4] (raw, fed, mean, std), each
    window's first step number, whether it is of a series read as returns, and the
    length of a step."""

    windows: F32
    first_steps: I64
    returns: Mask
    step_ns: int

    def __len__(self) -> int:
        return len(self.windows)


@dataclass(frozen=True)
class Recent:
    """The last steps of each slot with any since its reset, right aligned (zeros
    before the first real one): scaled inputs [n, window], how many are real, and the
    step number of the last."""

    slots: I64
    scaled: F32
    count: I64
    last_steps: I64


class ReplayBuffer:
    """Per-series recent steps and a bounded store of whole windows (see module doc)."""

    def __init__(self, window: int, stride: int, capacity_steps: int) -> None:
        if not 0 < stride <= window:
            raise ValueError(f"stride must be in 1..window ({window}), got {stride}")
        self.window = window
        self.stride = stride
        self.capacity = max(1, capacity_steps // window)
        self.step_ns = 0
        self.recent = np.zeros((0, window, CHANNELS), dtype=np.float32)
        self.head = np.zeros(0, dtype=np.int64)  # where each slot's next step goes
        self.count = np.zeros(0, dtype=np.int64)  # steps since reset, at most window
        self.pending = np.zeros(0, dtype=np.int64)  # steps not yet in a stored window
        self.last_step = np.zeros(0, dtype=np.int64)
        self.slot_returns = np.zeros(0, dtype=bool)
        self.store = np.zeros((self.capacity, window, CHANNELS), dtype=np.float32)
        self.store_first = np.zeros(self.capacity, dtype=np.int64)
        self.store_returns = np.zeros(self.capacity, dtype=bool)
        self.archived = 0  # windows stored in all; the next one goes to archived % capacity
        self.recorded = 0  # steps recorded in all
        self.sharing = False  # a replica of a group: own windows are handed on too
        self.outbox: list[tuple[F32, I64, Mask]] = []  # own windows not handed on yet

    def record(
        self,
        slots: I64,
        steps: I64,
        step_ns: int,
        channels: tuple[F64, F64, F64, F64],
        reset: Mask,
        returns: Mask,
    ) -> None:
        """One step for each of the (distinct) slots: (raw, fed, mean, std) as the
        forecaster saw them; `returns` marks series read as log returns."""
        if len(slots) == 0:
            return
        self.step_ns = step_ns
        self._ensure(int(slots.max()) + 1)
        fresh = slots[reset]
        self.count[fresh] = 0
        self.pending[fresh] = 0
        head = self.head[slots]
        self.recent[slots, head] = np.stack(channels, axis=1)
        self.head[slots] = (head + 1) % self.window
        self.count[slots] = np.minimum(self.count[slots] + 1, self.window)
        self.pending[slots] += 1
        self.last_step[slots] = steps
        self.slot_returns[slots] = returns
        self.recorded += len(slots)
        full = slots[self.pending[slots] >= self.window]
        if len(full):
            self._archive(full)
            self.pending[full] = self.window - self.stride

    _SLOT_ARRAYS = ("recent", "head", "count", "pending", "last_step", "slot_returns")

    def _ensure(self, needed: int) -> None:
        for name in self._SLOT_ARRAYS:
            setattr(self, name, grown(getattr(self, name), needed))

    def take_rows(self, slots: I64) -> Rows:
        """These series' recent steps, to carry on in another buffer (`series_rows`)."""
        self._ensure(int(slots.max(initial=-1)) + 1)
        return series_rows.take(self, self._SLOT_ARRAYS, slots)

    def put_rows(self, slots: I64, rows: Rows) -> None:
        self._ensure(int(slots.max(initial=-1)) + 1)
        series_rows.put(self, self._SLOT_ARRAYS, slots, rows)

    def forget(self, slots: I64) -> None:
        """Start these slots' recent steps afresh (their state was reset mid-series)."""
        slots = slots[slots < len(self.count)]
        self.count[slots] = 0
        self.pending[slots] = 0

    def _ordered(self, slots: I64) -> F32:
        """Each slot's ring, oldest step first."""
        index = (self.head[slots, None] + np.arange(self.window)) % self.window
        ordered: F32 = self.recent[slots[:, None], index]
        return ordered

    def _archive(self, slots: I64) -> None:
        windows = self._ordered(slots)
        first, returns = self.last_step[slots] - (self.window - 1), self.slot_returns[slots]
        self._store(windows, first, returns)
        if self.sharing:
            self.outbox.append((windows, first, returns))
            while sum(len(w) for w, _, _ in self.outbox) > self.capacity:
                self.outbox.pop(0)

    def _store(self, windows: F32, first: I64, returns: Mask) -> None:
        at = (self.archived + np.arange(len(windows))) % self.capacity
        self.store[at], self.store_first[at], self.store_returns[at] = windows, first, returns
        self.archived += len(windows)

    # --- windows shared between replicas (one model lineage) --------------------------

    def take_shared(self) -> Snapshot:
        """The windows of this buffer's own series archived since the last call (at most
        `capacity`), for the other replicas to train on too; the first call starts
        keeping them."""
        self.sharing = True
        parts, self.outbox = self.outbox, []
        if not parts:
            empty = np.zeros((0, self.window, CHANNELS), dtype=np.float32)
            return Snapshot(empty, np.zeros(0, np.int64), np.zeros(0, bool), self.step_ns)
        windows, first, returns = (np.concatenate(column) for column in zip(*parts, strict=True))
        return Snapshot(windows, first, returns, self.step_ns)

    def add_shared(self, windows: Snapshot) -> None:
        """Store windows another replica archived (of the same window length)."""
        if windows.windows.shape[1:] != self.store.shape[1:]:
            raise ValueError(
                f"windows of {windows.windows.shape[1]} steps from another replica; this "
                f"one's are {self.window}: every replica of a group needs the same retrain "
                "settings"
            )
        self.step_ns = self.step_ns or windows.step_ns
        keep = slice(max(0, len(windows) - self.capacity), None)
        self._store(windows.windows[keep], windows.first_steps[keep], windows.returns[keep])

    def snapshot(self) -> Snapshot:
        """A copy of the stored windows, oldest first."""
        n = min(self.archived, self.capacity)
        order = (self.archived - n + np.arange(n)) % self.capacity
        return Snapshot(
            self.store[order], self.store_first[order], self.store_returns[order], self.step_ns
        )

    def recent_inputs(self) -> Recent:
        """What a resync replays: see `Recent`."""
        slots = np.flatnonzero(self.count > 0)
        steps = self._ordered(slots)
        with np.errstate(invalid="ignore", divide="ignore"):
            scaled = (steps[..., FED] - steps[..., MEAN]) / steps[..., STD]
        real = np.arange(self.window)[None, :] >= self.window - self.count[slots, None]
        return Recent(
            slots,
            np.where(real, scaled, 0.0).astype(np.float32),
            self.count[slots].copy(),
            self.last_step[slots].copy(),
        )

    _STATE = (
        "recent",
        "head",
        "count",
        "pending",
        "last_step",
        "slot_returns",
        "store",
        "store_first",
        "store_returns",
    )

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {name: getattr(self, name).copy() for name in self._STATE}
        state.update(
            archived=self.archived, recorded=self.recorded, window=self.window, step_ns=self.step_ns
        )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["window"]) != self.window or len(state["store"]) != self.capacity:
            raise ValueError(
                f"the checkpoint's replay buffer holds {len(state['store'])} windows of "
                f"{state['window']} steps; the config asks for {self.capacity} of "
                f"{self.window}. Set retrain.window and retrain.buffer_steps back, or "
                "remove the checkpoint"
            )
        for name in self._STATE:
            setattr(self, name, state[name].copy())
        self.archived = int(state["archived"])
        self.recorded = int(state["recorded"])
        self.step_ns = int(state["step_ns"])
