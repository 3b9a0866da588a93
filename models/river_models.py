"""river's classical online forecasters (SNARIMAX, Holt-Winters), one per series.

They learn one value at a time, so unlike the vectorised models these loop over rows in
Python: fine for `streamer evaluate` and small deployments, not for 100k live series.
Each row is learnt and then forecast from, as the other forecasters do (no look-ahead).
Until a series' model has seen `ready_after` values it cannot forecast (Holt-Winters
needs a season to start), so the last value stands in.

A forecast with a non-finite value never leaves the forecaster: that row gets the last
value for every horizon, the row is counted in `fallbacks`, and the series' model starts
afresh (an online regression whose weights went to inf or NaN does not come back).

The defaults were chosen on the ETT transformer data (z-scored, horizons 1..24, learnt
and scored leak-free), where both stay within 1.5x the last value's MSE at h=1 and over
1..24; river's own defaults do not:

- SNARIMAX's default regressor is `StandardScaler | LinearRegression` (SGD step 0.01,
  squared loss). Its weights diverge within a few hundred steps (forecasts of 1e31 at
  h=1, inf further out). Smaller steps help only so far: at 0.003 the 24-step
  recursive forecast explodes on ETTh1, and at 0.001, where ETT is fine, a series with
  rare spikes still pushes the autoregressive weights out of the stable region
  (errors of 1e13). Each spike is a huge error, and the squared loss moves the weights
  in proportion to it. Here the target is standardised too and the loss is Huber's,
  which bounds that step; it is stable for steps from 0.001 to 0.01.
- river's Holt-Winters with a trend (smoothing 0.3, 0.1, 0.6 as in river's example)
  extrapolates the trend's noise up to 24 steps ahead (MSE 12.3 against 2.8 for the
  last value on ETTh1), and with a 96-step season the updates feed on each other until
  the forecasts reach 1e11 (ETTm2). Without a trend neither happens: load and
  temperature series return to their level, they do not keep climbing. river also
  starts the additive season as y / level (the multiplicative form), which is huge
  when the level is near 0; here it starts as y - level.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models import series_rows
from models.series_rows import Rows
from streamer.core.records import Forecasts, StepBatch

RiverModel = Any  # river.time_series.base.Forecaster: learn_one(y), forecast(horizon)


class RiverForecaster:
    """One river model per series, made by `factory`, behind the Forecaster interface.

    `fallbacks` counts the rows whose forecast was not finite and was replaced by the
    last value (the series' model is then started afresh).
    """

    def __init__(
        self, name: str, horizon: int, factory: Callable[[], RiverModel], ready_after: int
    ) -> None:
        self._name = name
        self._horizon = horizon
        self.factory = factory
        self.ready_after = ready_after
        self.models: dict[int, RiverModel] = {}
        self.seen: dict[int, int] = {}
        self.fallbacks = 0

    @property
    def name(self) -> str:
        return self._name

    @property
    def horizon(self) -> int:
        return self._horizon

    def reset(self, slots: NDArray[np.int64]) -> None:
        for slot in slots.tolist():
            self.models.pop(slot, None)

    def take_rows(self, slots: NDArray[np.int64]) -> Rows:
        """Each series' river model (None where it has none yet) and steps seen."""
        held = slots.tolist()
        return {
            "model": series_rows.objects([self.models.get(s) for s in held]),
            "seen": np.array([self.seen.get(s, 0) for s in held], dtype=np.int64),
        }

    def put_rows(self, slots: NDArray[np.int64], rows: Rows) -> None:
        for slot, model, seen in zip(slots.tolist(), rows["model"], rows["seen"], strict=True):
            self.models.pop(slot, None)
            if model is not None:
                self.models[slot], self.seen[slot] = copy.deepcopy(model), int(seen)

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
            if self.seen[slot] < self.ready_after:
                yhat[i] = target[i]
                continue
            yhat[i] = self.models[slot].forecast(self._horizon)
            if not np.isfinite(yhat[i]).all():
                yhat[i] = target[i]
                self.fallbacks += 1
                self.models[slot], self.seen[slot] = self.factory(), 0
        return Forecasts(batch.series, batch.steps, yhat, self._name, batch.step_ns)

    def state_dict(self) -> dict[str, Any]:
        return {
            "models": pickle.dumps(self.models),
            "seen": dict(self.seen),
            "fallbacks": self.fallbacks,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.models = pickle.loads(state["models"])
        self.seen = dict(state["seen"])
        self.fallbacks = int(state.get("fallbacks", 0))


def snarimax(horizon: int, season: int, learning_rate: float = 0.003) -> RiverForecaster:
    """SNARIMAX(2,1,1)(0,1,1)[season]: a seasonal ARIMA learnt online.

    The orders are the airline model's (one regular and one seasonal difference, a
    regular and a seasonal moving-average term) plus two autoregressive terms. The
    regressor standardises its inputs and its target and learns by SGD with
    `learning_rate` on the Huber loss, so that a spike moves the weights no more than
    an error of one standard deviation does (the module's docstring says what happens
    without).
    """
    from river import linear_model, optim, preprocessing
    from river.time_series import SNARIMAX

    def make() -> RiverModel:
        linear = linear_model.LinearRegression(
            optimizer=optim.SGD(learning_rate),
            loss=optim.losses.Huber(epsilon=1.0),
            intercept_lr=learning_rate,
        )
        regressor = preprocessing.StandardScaler() | preprocessing.TargetStandardScaler(
            regressor=linear
        )
        return SNARIMAX(p=2, d=1, q=1, m=season, sp=0, sd=1, sq=1, regressor=regressor)

    return RiverForecaster("snarimax", horizon, make, ready_after=season + 3)


def holt_winters(
    horizon: int, season: int, alpha: float = 0.5, gamma: float = 0.1
) -> RiverForecaster:
    """Additive Holt-Winters with a level and a season, and no trend.

    `alpha` smooths the level and `gamma` the season: with 0.5 and 0.1 the level follows
    the last two or three steps and each phase of the season its last ten or so
    seasons. The first season starts it (see `AdditiveStart`).
    """
    from river.time_series import HoltWinters
    from river.time_series.holt_winters import Trend

    def make() -> RiverModel:
        model = HoltWinters(alpha=alpha, beta=0.0, gamma=gamma, seasonality=season)  # type: ignore[no-untyped-call]
        # river's seasonal update reads a trend whether or not there is one, so "no
        # trend" is a trend that starts at 0 and never moves (beta = 0).
        model.trend = Trend(0.0)  # type: ignore[no-untyped-call]
        return AdditiveStart(model)

    return RiverForecaster("holtwinters", horizon, make, ready_after=season)


class AdditiveStart:
    """river's additive HoltWinters, started from its first season as an additive model.

    river starts the season as y / level even in the additive form (huge values when
    the level is near 0, a division by zero when it is 0) and the trend as the mean
    step over the first season. Here the first `seasonality` values are kept aside and
    start `model` with the level at their mean, the season at each value's deviation
    from it and the trend at 0; from then on `model` learns as river does.
    """

    def __init__(self, model: RiverModel) -> None:
        self.model = model
        self.first: list[float] = []

    def learn_one(self, y: float) -> None:
        if self.model.level:
            self.model.learn_one(y)
            return
        self.first.append(y)
        if len(self.first) < max(2, self.model.seasonality):
            return
        level = sum(self.first) / len(self.first)
        self.model.level.append(level)
        self.model.trend.append(0.0)
        self.model.season.extend(value - level for value in self.first)
        self.model._initialized = True  # river's flag: the components are set
        self.first = []

    def forecast(self, horizon: int) -> list[float]:
        forecasts: list[float] = self.model.forecast(horizon)
        return forecasts
