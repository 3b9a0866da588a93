"""Recent windows of every series, recorded in the serving scale, for retraining.

Per-series rings of recent steps would hold too little with many series (10k series in
50k steps is 5 steps each), so the buffer keeps whole windows: each series fills its
own short ring of the last `window` steps since its last reset, and every `stride` steps
a full window is copied into one shared store of `capacity` windows, oldest overwritten
first. A step is recorded as the forecaster saw it: the raw value and the scaler's mean
and std after that value, so a window's inputs are `(raw - mean) / std` and its targets
`(raw[t+h] - mean[t]) / std[t]`, exactly the serving scale. The ring is also what a new
set of weights replays to rebuild each series' state (`recent`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.base import grown

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]
F32 = NDArray[np.float32]

RAW, MEAN, STD = 0, 1, 2


@dataclass(frozen=True)
class Snapshot:
    """The stored windows, oldest first: [n, window, 3] (raw, mean, std)."""

    windows: F32

    def __len__(self) -> int:
        return len(self.windows)


class ReplayBuffer:
    """Per-series recent steps and a bounded store of whole windows (see module doc)."""

    def __init__(self, window: int, stride: int, capacity_steps: int) -> None:
        if not 0 < stride <= window:
            raise ValueError(f"stride must be in 1..window ({window}), got {stride}")
        self.window = window
        self.stride = stride
        self.capacity = max(1, capacity_steps // window)
        self.recent = np.zeros((0, window, 3), dtype=np.float32)
        self.head = np.zeros(0, dtype=np.int64)  # where each slot's next step goes
        self.count = np.zeros(0, dtype=np.int64)  # steps since reset, at most window
        self.pending = np.zeros(0, dtype=np.int64)  # steps not yet in a stored window
        self.store = np.zeros((self.capacity, window, 3), dtype=np.float32)
        self.archived = 0  # windows stored in all; the next one goes to archived % capacity
        self.recorded = 0  # steps recorded in all

    def record(self, slots: I64, raw: F64, mean: F64, std: F64, reset: NDArray[np.bool_]) -> None:
        """One step for each of the (distinct) slots, as the forecaster saw it."""
        if len(slots) == 0:
            return
        needed = int(slots.max()) + 1
        self.recent = grown(self.recent, needed)
        self.head = grown(self.head, needed)
        self.count = grown(self.count, needed)
        self.pending = grown(self.pending, needed)
        fresh = slots[reset]
        self.count[fresh] = 0
        self.pending[fresh] = 0
        head = self.head[slots]
        self.recent[slots, head] = np.stack([raw, mean, std], axis=1)
        self.head[slots] = (head + 1) % self.window
        self.count[slots] = np.minimum(self.count[slots] + 1, self.window)
        self.pending[slots] += 1
        self.recorded += len(slots)
        full = slots[self.pending[slots] >= self.window]
        if len(full):
            self._archive(full)
            self.pending[full] = self.window - self.stride

    def _archive(self, slots: I64) -> None:
        index = (self.head[slots, None] + np.arange(self.window)) % self.window
        windows = self.recent[slots[:, None], index]
        at = (self.archived + np.arange(len(slots))) % self.capacity
        self.store[at] = windows
        self.archived += len(slots)

    def snapshot(self) -> Snapshot:
        """A copy of the stored windows, oldest first."""
        n = min(self.archived, self.capacity)
        first = self.archived - n
        order = (first + np.arange(n)) % self.capacity
        return Snapshot(self.store[order].copy())

    def recent_inputs(self) -> tuple[I64, F32, I64]:
        """Slots with steps since their reset, their last `window` scaled inputs (right
        aligned, zero before the first) and how many of those are real."""
        slots = np.flatnonzero(self.count > 0)
        index = (self.head[slots, None] + np.arange(self.window)) % self.window
        steps = self.recent[slots[:, None], index]
        with np.errstate(invalid="ignore", divide="ignore"):
            scaled = (steps[..., RAW] - steps[..., MEAN]) / steps[..., STD]
        real = np.arange(self.window)[None, :] >= self.window - self.count[slots, None]
        inputs: F32 = np.where(real, scaled, 0.0).astype(np.float32)
        return slots, inputs, self.count[slots].copy()

    def state_dict(self) -> dict[str, Any]:
        names = ("recent", "head", "count", "pending", "store")
        state: dict[str, Any] = {name: getattr(self, name).copy() for name in names}
        state.update(archived=self.archived, recorded=self.recorded, window=self.window)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["window"]) != self.window or len(state["store"]) != self.capacity:
            raise ValueError(
                f"the checkpoint's replay buffer holds {len(state['store'])} windows of "
                f"{state['window']} steps; the config asks for {self.capacity} of "
                f"{self.window}. Set retrain.window and retrain.buffer_steps back, or "
                "remove the checkpoint"
            )
        for name in ("recent", "head", "count", "pending", "store"):
            setattr(self, name, state[name].copy())
        self.archived = int(state["archived"])
        self.recorded = int(state["recorded"])
