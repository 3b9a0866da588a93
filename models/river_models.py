"""river's classical online forecasters (SNARIMAX, Holt-Winters), one per series.

They learn one value at a time, so unlike the vectorised models these loop over rows in
Python: fine for `streamer evaluate` and small deployments, not for 100k live series.
Each row is learnt and then forecast from, as the other forecasters do (no look-ahead).
Until a series' model has seen `ready_after` values it cannot forecast (Holt-Winters
needs a season to start), so the last value stands in.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streamer.records import Forecasts, StepBatch

RiverModel = Any  # river.time_series.base.Forecaster: learn_one(y), forecast(horizon)


class RiverForecaster:
    """One river model per series, made by `factory`, behind the Forecaster interface."""

    def __init__(
        self, name: str, horizon: int, factory: Callable[[], RiverModel], ready_after: int
    ) -> None:
        self._name = name
        self._horizon = horizon
        self.factory = factory
        self.ready_after = ready_after
        self.models: dict[int, RiverModel] = {}
        self.seen: dict[int, int] = {}

    @property
    def name(self) -> str:
        return self._name

    @property
    def horizon(self) -> int:
        return self._horizon

    def reset(self, slots: NDArray[np.int64]) -> None:
        for slot in slots.tolist():
            self.models.pop(slot, None)

    def step(self, batch: StepBatch) -> Forecasts:
        yhat = np.empty((len(batch), self._horizon))
        target = batch.target.tolist()
        for i, (slot, reset) in enumerate(
            zip(batch.slots.tolist(), batch.reset.tolist(), strict=True)
        ):
            if reset or slot not in self.models:
                self.models[slot], self.seen[slot] = self.factory(), 0
            self.models[slot].learn_one(target[i])
            self.seen[slot] += 1
            if self.seen[slot] >= self.ready_after:
                yhat[i] = self.models[slot].forecast(self._horizon)
            else:
                yhat[i] = target[i]
        return Forecasts(batch.series, batch.steps, yhat, self._name, batch.step_ns)

    def state_dict(self) -> dict[str, Any]:
        return {"models": pickle.dumps(self.models), "seen": dict(self.seen)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.models = pickle.loads(state["models"])
        self.seen = dict(state["seen"])


def snarimax(horizon: int, season: int) -> RiverForecaster:
    """SNARIMAX(2,1,1)(0,1,1)[season]: a seasonal ARIMA learnt online."""
    from river.time_series import SNARIMAX

    def make() -> RiverModel:
        return SNARIMAX(p=2, d=1, q=1, m=season, sp=0, sd=1, sq=1)

    return RiverForecaster("snarimax", horizon, make, ready_after=season + 3)


def holt_winters(horizon: int, season: int) -> RiverForecaster:
    """Additive Holt-Winters (level, trend, season) with river's usual smoothing."""
    from river.time_series import HoltWinters

    def make() -> RiverModel:
        return HoltWinters(alpha=0.3, beta=0.1, gamma=0.6, seasonality=season)  # type: ignore[no-untyped-call]

    return RiverForecaster("holtwinters", horizon, make, ready_after=season)
