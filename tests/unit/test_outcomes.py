"""Live errors and conformal intervals: each forecast is scored once its step arrives,
and the 90% interval covers about 90% of outcomes on a stationary stream."""

from __future__ import annotations

import numpy as np

from models.baseline import LastValue
from models.outcomes import Outcomes
from streamer.core.records import Forecasts
from tests.helpers import step_batch

H = 3


def test_every_forecast_is_scored_against_its_target_steps_value() -> None:
    outcomes = Outcomes(H, window=20)
    values = [10.0, 12.0, 11.0, 15.0, 14.0]
    issued = []
    scored = []
    for t, v in enumerate(values):
        batch = step_batch(np.array([v]), t, reset=t == 0)
        yhat = np.array([[v + 1, v + 2, v + 3]])  # a forecaster that always says "up"
        issued.append(yhat[0])
        errors, _ = outcomes.observe(batch, Forecasts(batch.series, batch.steps, yhat, "m", 1))
        scored += [
            (int(s), int(h), float(e))
            for s, h, e in zip(errors.steps, errors.horizon, errors.error, strict=True)
        ]
    # Step 3 (15.0) settles the step-2 forecast for h=1 (12), step-1's h=2 (14), step-0's h=3 (13).
    assert sorted(x for x in scored if x[0] == 3) == [(3, 1, 3.0), (3, 2, 1.0), (3, 3, 2.0)]
    assert len(scored) == 1 + 2 + 3 + 3  # steps 1..4 settle what was issued before them


def test_a_filled_step_settles_nothing_and_a_reset_forgets_pending_forecasts() -> None:
    outcomes = Outcomes(H, window=20)
    for t in range(3):
        batch = step_batch(np.array([1.0]), t, reset=t == 0)
        outcomes.observe(batch, Forecasts(batch.series, batch.steps, np.ones((1, H)), "m", 1))
    reset = step_batch(np.array([5.0]), 3, reset=True)
    errors, _ = outcomes.observe(
        reset, Forecasts(reset.series, reset.steps, np.ones((1, H)), "m", 1)
    )
    assert len(errors) == 0


def test_the_90_percent_interval_covers_about_90_percent_of_a_stationary_stream() -> None:
    rng = np.random.default_rng(7)
    series, steps = 10, 5_000
    # AR(1) around different levels and scales: stationary, not i.i.d.
    level = rng.uniform(10, 1000, series)
    scale = rng.uniform(0.1, 20, series)
    x = np.zeros((series, steps))
    for t in range(1, steps):
        x[:, t] = 0.7 * x[:, t - 1] + rng.normal(0, 1, series)
    values = level[:, None] + scale[:, None] * x

    model, outcomes = LastValue(H), Outcomes(H, coverage=0.9, window=100)
    lower = np.full((series, steps, H), np.nan)
    upper = np.full((series, steps, H), np.nan)
    for t in range(steps):
        batch = step_batch(values[:, t], t, reset=t == 0)
        _, forecasts = outcomes.observe(batch, model.step(batch))
        assert forecasts.lower is not None
        assert forecasts.upper is not None
        lower[:, t], upper[:, t] = forecasts.lower, forecasts.upper

    covered, known = [], 0
    for h in range(1, H + 1):
        lo, up, actual = lower[:, : steps - h, h - 1], upper[:, : steps - h, h - 1], values[:, h:]
        has = ~np.isnan(lo)
        known += int(has.sum())
        covered.append((actual >= lo) & (actual <= up) & has)
    coverage = sum(int(c.sum()) for c in covered) / known
    assert 0.87 <= coverage <= 0.93, coverage
    # Intervals are omitted only at the start, until enough residuals exist.
    assert known > 0.98 * series * sum(steps - h for h in range(1, H + 1))
    assert np.isnan(lower[:, :5]).all()


def test_rolling_mae_and_mase_per_horizon() -> None:
    # The series rises by 2 a step; the forecaster says +1 a step: off by h at horizon h.
    outcomes = Outcomes(H, window=20)
    for t in range(50):
        value = 2.0 * t
        batch = step_batch(np.array([value]), t, reset=t == 0)
        yhat = value + np.arange(1, H + 1, dtype=float)[None, :]
        outcomes.observe(batch, Forecasts(batch.series, batch.steps, yhat, "m", 1))
    np.testing.assert_allclose(outcomes.rolling_mae(0), [1.0, 2.0, 3.0])
    # Against the one-step naive forecast, which is off by 2 every step.
    np.testing.assert_allclose(outcomes.rolling_mase(0), [0.5, 1.0, 1.5])
