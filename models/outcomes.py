"""Forecasts meet their outcomes: live errors, rolling accuracy and conformal intervals.

Each series keeps the forecasts issued at its last H steps. When a step closes with a
real value (not a forward fill), every forecast made for that step (by the issues at
t-1..t-H, one per horizon) is scored: absolute and squared error. The absolute error,
divided by the series' running std as it was when the forecast was issued (the
"normalised space", so one scale serves a series whose level moves), enters a rolling
window of `window` residuals per series and horizon. A new forecast's interval is
yhat -/+ q * (the series' std now), where q is the split-conformal quantile of that
window: its ceil((n + 1) * coverage)-th smallest residual. Until a window holds enough
residuals for that (n >= 9 at 90%), the interval is omitted (NaN), never invented.
Quantiles are refreshed for a series every `window // 20` scored steps, not at
every step. A reset (a new series in the slot, a long gap) clears it all.

Also kept, per series: exponentially weighted MAE per horizon and the MAE of the
one-step naive forecast, whose ratio is a rolling MASE.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models import series_rows
from models.base import grown, rank_groups
from models.scaling import OnlineScaler
from models.series_rows import Rows
from streamer.core.records import ForecastErrors, Forecasts, StepBatch

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]
NONE = np.iinfo(np.int64).min  # no forecast pending (any step number can be issued)
_F16_MAX = float(np.finfo(np.float16).max)

_ARRAYS = (
    "pend_yhat",
    "pend_step",
    "pend_scale",
    "pend_model",
    "resid",
    "resid_head",
    "resid_count",
    "quantile",
    "since",
    "ewm_abs",
    "ewm_naive",
    "last_value",
)


class Outcomes:
    """Scores closed steps against earlier forecasts and gives new ones intervals."""

    def __init__(
        self, horizon: int, coverage: float = 0.9, window: int = 100, rolling: int = 100
    ) -> None:
        self.horizon = horizon
        self.coverage = coverage
        self.window = window
        self.alpha = 2.0 / (rolling + 1)  # weight of the newest error in the rolling means
        self.refresh = max(1, window // 20)
        self.scaler = OnlineScaler()
        h = horizon
        self.pend_yhat = np.zeros((0, h, h))  # [slot, issue step % H, horizon - 1]
        self.pend_step = np.zeros((0, h), dtype=np.int64)
        self.pend_scale = np.ones((0, h))
        self.pend_model = np.zeros((0, h), dtype=object)
        self.resid = np.zeros((0, h, window), dtype=np.float16)
        self.resid_head = np.zeros((0, h), dtype=np.int64)
        self.resid_count = np.zeros((0, h), dtype=np.int64)
        self.quantile = np.zeros((0, h))
        self.since = np.zeros(0, dtype=np.int64)
        self.ewm_abs = np.zeros((0, h))
        self.ewm_naive = np.zeros(0)
        self.last_value = np.zeros(0)

    def _ensure(self, needed: int) -> None:
        if needed <= len(self.since):
            return
        fills: dict[str, Any] = {"pend_step": NONE, "pend_scale": 1.0, "quantile": np.nan}
        fills.update(ewm_abs=np.nan, ewm_naive=np.nan, last_value=np.nan)
        for name in _ARRAYS:
            setattr(self, name, grown(getattr(self, name), needed, fills.get(name, 0)))

    def take_rows(self, slots: I64) -> Rows:
        """These series' pending forecasts, residuals and scale, to carry on elsewhere."""
        self._ensure(int(slots.max(initial=-1)) + 1)
        return series_rows.take(self, _ARRAYS, slots) | {"scaler": self.scaler.take_rows(slots)}

    def put_rows(self, slots: I64, rows: Rows) -> None:
        self._ensure(int(slots.max(initial=-1)) + 1)
        series_rows.put(self, _ARRAYS, slots, rows)
        self.scaler.put_rows(slots, rows["scaler"])

    def _clear(self, slots: I64) -> None:
        self.pend_step[slots] = NONE
        self.resid_head[slots] = 0
        self.resid_count[slots] = 0
        self.quantile[slots] = np.nan
        self.since[slots] = 0
        self.ewm_abs[slots] = np.nan
        self.ewm_naive[slots] = np.nan
        self.last_value[slots] = np.nan
        self.scaler.reset(slots)

    def observe(self, batch: StepBatch, forecasts: Forecasts) -> tuple[ForecastErrors, Forecasts]:
        """Errors of the forecasts this batch's steps settle, and its forecasts with
        intervals (rows in the batch's order, each series' steps in time order)."""
        n, h = len(batch), self.horizon
        lower, upper = np.full((n, h), np.nan), np.full((n, h), np.nan)
        parts: list[tuple[I64, I64, F64, F64, NDArray[np.object_]]] = []
        if n:
            self._ensure(int(batch.slots.max()) + 1)
        tags = forecasts.row_models()
        for rows in rank_groups(batch.slots):
            slots, steps = batch.slots[rows], batch.steps[rows]
            if batch.reset[rows].any():
                self._clear(slots[batch.reset[rows]])
            parts.append(self._score(rows, slots, steps, batch))
            values = batch.target[rows, None]
            self.scaler.update(slots, values)
            scale = self.scaler.std(slots)[:, 0]
            at = steps % h
            self.pend_yhat[slots, at] = forecasts.yhat[rows]
            self.pend_step[slots, at] = steps
            self.pend_scale[slots, at] = scale
            self.pend_model[slots, at] = tags[rows]
            self._refresh(slots)
            width = self.quantile[slots] * scale[:, None]
            lower[rows] = forecasts.yhat[rows] - width
            upper[rows] = forecasts.yhat[rows] + width
        return self._errors(batch, parts), _with_intervals(forecasts, lower, upper)

    def _score(
        self, rows: I64, slots: I64, steps: I64, batch: StepBatch
    ) -> tuple[I64, I64, F64, F64, NDArray[np.object_]]:
        """Score the forecasts for these (real) steps; returns (rows, horizons, errors,
        scaled absolute errors, models) of the scored pairs."""
        h = self.horizon
        horizons = np.arange(1, h + 1)
        issue = steps[:, None] - horizons[None, :]  # [n, H]: when each was issued
        at = issue % h
        issued = self.pend_step[slots[:, None], at] == issue
        issued &= ~batch.filled[rows, None]
        i, j = np.nonzero(issued)
        s, p = slots[i], at[i, j]
        value = batch.target[rows][i]
        error = value - self.pend_yhat[s, p, j]
        models = self.pend_model[s, p]
        # Rolling accuracy, and the residual window of each (series, horizon).
        absolute = np.abs(error)
        old = self.ewm_abs[s, j]
        self.ewm_abs[s, j] = np.where(np.isnan(old), absolute, old + self.alpha * (absolute - old))
        head = self.resid_head[s, j]
        scaled = absolute / self.pend_scale[s, p]
        # Stored as float16; a series flat so far (a tiny std) can give a huge ratio.
        self.resid[s, j, head] = np.minimum(scaled, _F16_MAX)
        self.resid_head[s, j] = (head + 1) % self.window
        self.resid_count[s, j] = np.minimum(self.resid_count[s, j] + 1, self.window)
        self.since[np.unique(s)] += 1
        # One-step naive error, the rolling MASE's denominator.
        real = ~batch.filled[rows]
        values = batch.target[rows]
        previous = self.last_value[slots]
        naive = np.abs(values - previous)
        known = real & ~np.isnan(previous)
        old_naive = self.ewm_naive[slots]
        updated = np.where(np.isnan(old_naive), naive, old_naive + self.alpha * (naive - old_naive))
        self.ewm_naive[slots] = np.where(known, updated, old_naive)
        self.last_value[slots] = np.where(real, values, previous)
        return rows[i], horizons[j], error, scaled, models

    def _refresh(self, slots: I64) -> None:
        """Recompute the conformal quantiles of slots with enough new residuals."""
        due = slots[self.since[slots] >= self.refresh]
        if len(due) == 0:
            return
        self.since[due] = 0
        count = self.resid_count[due]  # [m, H]
        ring = self.resid[due].astype(np.float32)  # [m, H, W]
        filled = np.arange(self.window)[None, None, :] < count[..., None]
        ordered = np.sort(np.where(filled, ring, np.inf), axis=-1)
        k = np.ceil((count + 1) * self.coverage).astype(np.int64)
        known = k <= count
        picked = np.take_along_axis(ordered, np.clip(k - 1, 0, self.window - 1)[..., None], -1)
        self.quantile[due] = np.where(known, picked[..., 0], np.nan)

    def _errors(
        self, batch: StepBatch, parts: list[tuple[I64, I64, F64, F64, NDArray[np.object_]]]
    ) -> ForecastErrors:
        if parts:
            rows = np.concatenate([p[0] for p in parts])
            horizons = np.concatenate([p[1] for p in parts])
            errors = np.concatenate([p[2] for p in parts])
            scaled = np.concatenate([p[3] for p in parts])
            models = np.concatenate([p[4] for p in parts])
        else:
            rows, horizons = np.empty(0, np.int64), np.empty(0, np.int64)
            errors, scaled, models = np.empty(0), np.empty(0), np.empty(0, object)
        return ForecastErrors(
            series=batch.series[rows],
            slots=batch.slots[rows],
            steps=batch.steps[rows],
            horizon=horizons,
            error=errors,
            scaled=scaled,
            model=models,
            step_ns=batch.step_ns,
        )

    def rolling_mae(self, slot: int) -> F64:
        """The series' exponentially weighted MAE per horizon (NaN before any error)."""
        mae: F64 = self.ewm_abs[slot].copy()
        return mae

    def rolling_mase(self, slot: int) -> F64:
        """Rolling MAE per horizon over the rolling MAE of the one-step naive forecast."""
        naive = float(self.ewm_naive[slot])
        mase: F64 = self.ewm_abs[slot] / naive if naive > 0 else np.full(self.horizon, math.nan)
        return mase

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {name: getattr(self, name).copy() for name in _ARRAYS}
        state["scaler"] = self.scaler.state_dict()
        state["settings"] = (self.horizon, self.coverage, self.window)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        mine = (self.horizon, self.coverage, self.window)
        if tuple(state["settings"]) != mine:
            raise ValueError(
                f"the checkpoint's intervals (horizon, coverage, window) "
                f"{tuple(state['settings'])} differ from the config's {mine}; set them back "
                "or remove the checkpoint"
            )
        for name in _ARRAYS:
            setattr(self, name, state[name].copy())
        self.scaler.load_state_dict(state["scaler"])


def _with_intervals(forecasts: Forecasts, lower: F64, upper: F64) -> Forecasts:
    return dataclasses.replace(forecasts, lower=lower, upper=upper)
