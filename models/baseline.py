"""Baseline forecasters: last value, and seasonal naive (the value one season earlier).

They need no training, so they forecast from a series' first step; the LSTM is measured
against them, and stands in for them once trained.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from models import series_rows
from models.base import grown, rank_groups
from models.series_rows import Rows
from streamer.core.records import Forecasts, StepBatch


class LastValue:
    """Every horizon forecasts the step's own value."""

    def __init__(self, horizon: int) -> None:
        self._horizon = horizon

    @property
    def name(self) -> str:
        return "last_value"

    @property
    def horizon(self) -> int:
        return self._horizon

    def reset(self, slots: NDArray[np.int64]) -> None:
        pass  # no state

    def take_rows(self, slots: NDArray[np.int64]) -> Rows:
        return {}

    def put_rows(self, slots: NDArray[np.int64], rows: Rows) -> None:
        pass

    def step(self, batch: StepBatch) -> Forecasts:
        yhat = np.repeat(batch.target[:, None], self._horizon, axis=1)
        return Forecasts(batch.series, batch.steps, yhat, self.name, batch.step_ns)

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class SeasonalNaive:
    """Horizon h forecasts the value m * ceil(h / m) - h steps before the issuing step.

    Until a series has a full season since its last reset, it forecasts its last value.
    """

    def __init__(self, horizon: int, season_length: int) -> None:
        self._horizon = horizon
        self.season_length = season_length
        # ring[slot, step % m]: the series' last m values; seen: steps since reset.
        self.ring = np.zeros((0, season_length))
        self.seen = np.zeros(0, dtype=np.int64)
        h = np.arange(1, horizon + 1)
        self._h = h
        self._lag = season_length * -(-h // season_length) - h  # 0 <= lag < m

    @property
    def name(self) -> str:
        return "seasonal_naive"

    @property
    def horizon(self) -> int:
        return self._horizon

    def reset(self, slots: NDArray[np.int64]) -> None:
        self.seen[slots[slots < len(self.seen)]] = 0

    def _ensure(self, needed: int) -> None:
        self.ring = grown(self.ring, needed)
        self.seen = grown(self.seen, needed)

    def take_rows(self, slots: NDArray[np.int64]) -> Rows:
        self._ensure(int(slots.max(initial=-1)) + 1)
        return series_rows.take(self, ("ring", "seen"), slots)

    def put_rows(self, slots: NDArray[np.int64], rows: Rows) -> None:
        self._ensure(int(slots.max(initial=-1)) + 1)
        series_rows.put(self, ("ring", "seen"), slots, rows)

    def step(self, batch: StepBatch) -> Forecasts:
        m = self.season_length
        yhat = np.empty((len(batch), self._horizon))
        if len(batch):
            self._ensure(int(batch.slots.max()) + 1)
        target = batch.target
        # One vectorised update per position in the series' sequences (time-major).
        for rows in rank_groups(batch.slots):
            slots, steps = batch.slots[rows], batch.steps[rows]
            self.seen[slots] = np.where(batch.reset[rows], 0, self.seen[slots])
            self.ring[slots, steps % m] = target[rows]
            self.seen[slots] += 1
            index = (steps[:, None] + self._h[None, :]) % m
            known = self._lag[None, :] < self.seen[slots][:, None]
            yhat[rows] = np.where(known, self.ring[slots[:, None], index], target[rows, None])
        return Forecasts(batch.series, batch.steps, yhat, self.name, batch.step_ns)

    def state_dict(self) -> dict[str, Any]:
        return {"ring": self.ring.copy(), "seen": self.seen.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ring = np.array(state["ring"], dtype=float)
        self.seen = np.array(state["seen"], dtype=np.int64)
