"""river's forecasters forecast sensibly: finite, and not far behind the last value."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from models.river_models import RiverForecaster, holt_winters, snarimax
from streamer.core.records import StepBatch

SEASON = 24
HORIZON = 24

MODELS: dict[str, Callable[[], RiverForecaster]] = {
    "snarimax": lambda: snarimax(HORIZON, SEASON),
    "holtwinters": lambda: holt_winters(HORIZON, SEASON),
}


def series_batch(values: np.ndarray) -> StepBatch:
    """values [series, steps] as one batch: each series' steps in order, then the next."""
    n_series, n_steps = values.shape
    slots = np.repeat(np.arange(n_series, dtype=np.int64), n_steps)
    steps = np.tile(np.arange(n_steps, dtype=np.int64), n_series)
    return StepBatch(
        slots=slots,
        series=np.array([f"s{s}" for s in slots], dtype=object),
        kinds=np.full(len(slots), "sensor", dtype=object),
        steps=steps,
        values=values.reshape(-1, 1).astype(float),
        filled=np.zeros(len(slots), dtype=bool),
        reset=steps == 0,
        step_ns=3_600_000_000_000,
    )


def spiky_seasonal_walk(n_series: int, n_steps: int, offset: float, scale: float) -> np.ndarray:
    """A random walk plus a daily season plus noise plus rare spikes, like sensor load.

    The spikes (one step in 200, five times the season's amplitude) are what make an
    online regression without a small enough step diverge.
    """
    rng = np.random.default_rng(1)
    t = np.arange(n_steps)
    phase = rng.uniform(0, 2 * np.pi, size=(n_series, 1))
    walk = np.cumsum(rng.normal(0, 0.2, size=(n_series, n_steps)), axis=1)
    season = np.sin(2 * np.pi * t / SEASON + phase)
    noise = rng.normal(0, 0.2, size=(n_series, n_steps))
    spikes = (rng.random((n_series, n_steps)) < 0.005) * rng.normal(0, 5, (n_series, n_steps))
    out: np.ndarray = offset + scale * (walk + season + noise + spikes)
    return out


def mse_by_horizon(values: np.ndarray, yhat: np.ndarray, first: int) -> np.ndarray:
    """MSE per horizon [H] of the forecasts issued at steps first..n-H-1 of every series."""
    n_steps = values.shape[1]
    issued = np.arange(first, n_steps - HORIZON)
    errors = [values[:, issued + h] - yhat[:, issued, h - 1] for h in range(1, HORIZON + 1)]
    out: np.ndarray = np.mean(np.square(errors), axis=(1, 2))
    return out


@pytest.mark.parametrize(("offset", "scale"), [(0.0, 1.0), (500.0, 20.0)])
@pytest.mark.parametrize("make", MODELS.values(), ids=MODELS.keys())
def test_forecasts_are_finite_and_within_one_and_a_half_last_value(
    make: Callable[[], RiverForecaster], offset: float, scale: float
) -> None:
    values = spiky_seasonal_walk(n_series=3, n_steps=2000, offset=offset, scale=scale)
    model = make()
    yhat = model.step(series_batch(values)).yhat.reshape(3, 2000, HORIZON)
    assert np.isfinite(yhat).all()
    assert model.fallbacks == 0
    mse = mse_by_horizon(values, yhat, first=600)
    last_value = mse_by_horizon(values, np.repeat(values[:, :, None], HORIZON, axis=2), 600)
    assert mse[0] <= 1.5 * last_value[0]
    assert mse.mean() <= 1.5 * last_value.mean()


class Diverging:
    """A river-like model whose forecasts are finite until its `broken_at`-th value."""

    made = 0

    def __init__(self, broken_at: int) -> None:
        self.broken_at = broken_at
        self.learnt = 0
        Diverging.made += 1

    def learn_one(self, y: float) -> None:
        self.learnt += 1

    def forecast(self, horizon: int) -> list[float]:
        if self.learnt >= self.broken_at:
            return [1.0, float("nan"), float("inf")][:horizon]
        return [0.5] * horizon


def test_a_non_finite_forecast_is_replaced_by_the_last_value_and_restarts_the_model() -> None:
    Diverging.made = 0
    model = RiverForecaster("diverging", 3, lambda: Diverging(broken_at=3), ready_after=1)
    values = np.array([[10.0, 11.0, 12.0, 13.0, 14.0, 15.0]])
    yhat = model.step(series_batch(values)).yhat
    assert yhat.tolist() == [
        [0.5] * 3,
        [0.5] * 3,
        [12.0] * 3,  # broken: the last value, and a fresh model from here
        [0.5] * 3,
        [0.5] * 3,
        [15.0] * 3,
    ]
    assert model.fallbacks == 2
    assert Diverging.made == 3
    restored = RiverForecaster("diverging", 3, lambda: Diverging(broken_at=3), ready_after=1)
    restored.load_state_dict(model.state_dict())
    assert restored.fallbacks == 2


def test_holt_winters_repeats_a_noise_free_season_from_its_first_season() -> None:
    # The first season's mean is exactly 0: river's own start divides by it.
    season = np.array([0.0, 1.0, 2.0, 1.0, 0.0, -1.0, -2.0, -1.0])
    values = np.tile(season, 4)[None, :]
    model = holt_winters(horizon=10, season=len(season))
    yhat = model.step(series_batch(values)).yhat
    for t in range(len(season) - 1, values.shape[1]):
        expected = [season[(t + h) % len(season)] for h in range(1, 11)]
        np.testing.assert_allclose(yhat[t], expected, atol=1e-12, err_msg=f"step {t}")


def test_holt_winters_does_not_extrapolate_a_trend() -> None:
    values = np.arange(48, dtype=float)[None, :]  # a rising line
    yhat = holt_winters(horizon=8, season=4).step(series_batch(values)).yhat
    # Without a trend, the forecast a season further ahead is the same forecast.
    np.testing.assert_allclose(yhat[4:, 4:], yhat[4:, :4], atol=1e-12)
    assert yhat[-1].max() < values[0, -1] + 1.0
