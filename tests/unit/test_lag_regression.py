"""The linear highway restored from a checkpoint mid-stream goes on exactly as if it had
never stopped: the same refits at the same steps, the same forecasts."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from models.lag_regression import LagRegression
from models.scaling import OnlineScaler


def make() -> LagRegression:
    # Small refit_every and max_pairs: refits, and turns through large steps, happen often.
    return LagRegression(horizon=4, lags=5, refit_every=20, max_pairs=8)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), stop=st.integers(1, 59))
def test_a_restored_highway_continues_exactly(seed: int, stop: int) -> None:
    rng = np.random.default_rng(seed)
    steps = []
    for _ in range(60):
        slots = rng.permutation(30)[: rng.integers(1, 30)]
        n = len(slots)
        values = (rng.normal(size=n), rng.normal(size=n), rng.uniform(0.5, 2.0, n))
        steps.append((slots, values, rng.random(n) < 0.02, rng.random(n) < 0.2))
    continuous, stopped = make(), make()
    expected: list[np.ndarray] = []
    got: list[np.ndarray] = []
    for k, (slots, (fed, mean, std), reset, returns) in enumerate(steps):
        if k == stop:  # a restart from a checkpoint taken here
            restored = make()
            restored.load_state_dict(stopped.state_dict())
            stopped = restored
        for model, out in ((continuous, expected), (stopped, got)):
            model.observe(slots, fed, mean, std, reset, returns)
            model.refit_if_due()
            out.append(model.forecast(slots, returns))
    for k, (a, b) in enumerate(zip(expected, got, strict=True)):
        assert np.array_equal(a, b), f"step {k} differs after a restart at step {stop}"


def test_a_level_shift_does_not_teach_the_highway_to_forecast_far_off_the_series() -> None:
    # A series near 10 jumps by a million: the pairs straddling the jump ask for a change
    # of half a million of its old sds. The map must not learn that as a pattern, or
    # every later forecast is multiplied out by the new, wide scale (a thousand times
    # the level here, from the first refit after the jump).
    rng = np.random.default_rng(0)
    values = 10.0 + rng.normal(size=600).cumsum() * 0.3
    values[300:] += 1e6
    ar = LagRegression(horizon=3, lags=24)
    scaler = OnlineScaler()
    slots = np.zeros(1, dtype=np.int64)
    for t, value in enumerate(values):
        scaler.update(slots, np.array([[value]]))
        mean, std = scaler.mean[slots, 0], scaler.std(slots)[:, 0]
        ar.observe(slots, np.array([value]), mean, std, np.zeros(1, bool))
        ar.refit_if_due()
        change = ar.forecast(slots, np.zeros(1, bool))[0] * std[0]
        if t >= 350:  # past the jump's own lags (the map refits at 256 new pairs)
            assert np.abs(change).max() < 5e4, f"step {t}: forecasts {change} off the level"
