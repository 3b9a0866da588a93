"""Every Forecaster keeps per-series state correctly; and the baselines forecast as named."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from typing import cast

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.base import Forecaster
from models.baseline import LastValue, SeasonalNaive
from models.cold_start import ColdStart
from models.ensemble import Ensemble
from models.recurrent import RecurrentForecaster
from models.replay_buffer import ReplayBuffer
from models.river_models import holt_winters, snarimax
from streamer.core.records import Forecasts, StepBatch

IMPLEMENTATIONS: dict[str, Callable[[], Forecaster]] = {
    "last_value": lambda: LastValue(horizon=4),
    "seasonal_naive": lambda: SeasonalNaive(horizon=5, season_length=3),
    "lstm": lambda: RecurrentForecaster(horizon=4, cell="lstm", hidden_size=8, num_layers=2),
    "gru": lambda: RecurrentForecaster(horizon=4, cell="gru", hidden_size=8),
    "holtwinters": lambda: holt_winters(horizon=4, season=3),
    "ensemble": lambda: Ensemble(
        {
            "lstm": RecurrentForecaster(horizon=4, hidden_size=8, lags=3),
            "last_value": LastValue(horizon=4),
            "seasonal_naive": SeasonalNaive(horizon=4, season_length=3),
        },
        halflife=5.0,
    ),
    "snarimax": lambda: snarimax(horizon=4, season=3),
    # The net behind its cold-start gate, judged live against a baseline: on this
    # stream they hand over to each other several times.
    "cold_start": lambda: ColdStart(
        RecurrentForecaster(horizon=4, hidden_size=8),
        SeasonalNaive(horizon=4, season_length=5),
        min_train_steps=0,
        halflife=5.0,
        min_scored=3,
    ),
    # Calendar inputs, prices (even slots) read as log returns, steps recorded for training.
    "lstm_calendar_returns": lambda: RecurrentForecaster(
        horizon=4,
        hidden_size=8,
        calendar=True,
        returns=True,
        replay=ReplayBuffer(window=6, stride=2, capacity_steps=600),
    ),
}


def batch(rows: list[tuple[int, int, float, bool]]) -> StepBatch:
    """rows of (slot, step, value, reset), grouped by slot as the window emits them."""
    rows = sorted(rows, key=lambda r: (r[0], r[1]))
    slots = np.array([r[0] for r in rows], dtype=np.int64)
    return StepBatch(
        slots=slots,
        series=np.array([f"s{s}" for s in slots], dtype=object),
        kinds=np.array(["price" if s % 2 == 0 else "sensor" for s in slots], dtype=object),
        steps=np.array([r[1] for r in rows], dtype=np.int64),
        values=np.array([[r[2]] for r in rows], dtype=float).reshape(len(rows), 1),
        filled=np.zeros(len(rows), dtype=bool),
        reset=np.array([r[3] for r in rows], dtype=bool),
        step_ns=3_600_000_000_000,  # hours: calendar inputs differ from step to step
    )


def stream(n_series: int, n_steps: int, seed: int) -> list[tuple[int, int, float, bool]]:
    rng = np.random.default_rng(seed)
    return [
        (slot, step, float(100 + 5 * rng.normal()), step == 0 or rng.random() < 0.05)
        for step in range(n_steps)
        for slot in range(n_series)
    ]


def by_key(forecasts: list[Forecasts]) -> dict[tuple[str, int], list[float]]:
    out = {}
    for f in forecasts:
        for i in range(len(f)):
            out[(str(f.series[i]), int(f.steps[i]))] = f.yhat[i].tolist()
    return out


def tags(forecasts: list[Forecasts]) -> dict[tuple[str, int], str]:
    return {
        (str(s), int(t)): m
        for f in forecasts
        for s, t, m in zip(f.series, f.steps, f.row_models(), strict=True)
    }


def assert_same(
    a: dict[tuple[str, int], list[float]], b: dict[tuple[str, int], list[float]]
) -> None:
    """The same forecasts, to float tolerance (batched float32 maths may differ in the
    last bits with the batch's composition)."""
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-6, err_msg=str(key))


def split(rows: list[tuple[int, int, float, bool]], cuts: list[int]) -> list[StepBatch]:
    """The stream in time order, cut into batches at the given steps."""
    edges = [0, *sorted(set(cuts)), 10**9]
    return [batch([r for r in rows if lo <= r[1] < hi]) for lo, hi in itertools.pairwise(edges)]


@pytest.mark.parametrize("make", IMPLEMENTATIONS.values(), ids=IMPLEMENTATIONS.keys())
@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(1, 29), max_size=6), seed=st.integers(0, 1000))
def test_one_batch_or_many_give_the_same_forecasts(
    make: Callable[[], Forecaster], cuts: list[int], seed: int
) -> None:
    rows = stream(n_series=4, n_steps=30, seed=seed)
    whole = make().step(batch(rows))
    model = make()
    parts = [model.step(b) for b in split(rows, cuts)]
    assert_same(by_key(parts), by_key([whole]))
    assert tags(parts) == tags([whole])  # the same model answered for each
    assert whole.yhat.shape == (len(rows), model.horizon)


@pytest.mark.parametrize("make", IMPLEMENTATIONS.values(), ids=IMPLEMENTATIONS.keys())
def test_state_round_trip_continues_exactly(make: Callable[[], Forecaster]) -> None:
    first, rest = split(stream(n_series=3, n_steps=20, seed=1), [11])
    continuous = make()
    continuous.step(first)
    expected = continuous.step(rest)
    before = make()
    before.step(first)
    restored = make()
    restored.load_state_dict(before.state_dict())
    assert_same(by_key([restored.step(rest)]), by_key([expected]))


@pytest.mark.parametrize("make", IMPLEMENTATIONS.values(), ids=IMPLEMENTATIONS.keys())
def test_series_rows_moved_to_other_slots_continue_exactly(make: Callable[[], Forecaster]) -> None:
    """What a replica that takes series over does: the shared state (weights, fits) is
    the same, each series' own state comes as rows, into whatever slots are free."""
    first, rest = split(stream(n_series=3, n_steps=20, seed=1), [11])
    continuous = make()
    continuous.step(first)
    expected = continuous.step(rest)
    before = make()
    before.step(first)
    moved = make()
    moved.load_state_dict(before.state_dict())
    new_slots = np.array([5, 6, 9])
    moved.put_rows(new_slots, before.take_rows(np.array([0, 1, 2])))
    elsewhere = dataclasses.replace(rest, slots=new_slots[rest.slots])
    assert_same(by_key([moved.step(elsewhere)]), by_key([expected]))


@pytest.mark.parametrize("make", IMPLEMENTATIONS.values(), ids=IMPLEMENTATIONS.keys())
def test_same_input_gives_the_same_output(make: Callable[[], Forecaster]) -> None:
    rows = stream(n_series=3, n_steps=15, seed=2)
    assert_same(by_key([make().step(batch(rows))]), by_key([make().step(batch(rows))]))


def test_last_value_forecasts_the_step_value_for_every_horizon() -> None:
    out = LastValue(horizon=3).step(batch([(0, 0, 5.0, True), (0, 1, 7.0, False)]))
    assert out.yhat.tolist() == [[5.0] * 3, [7.0] * 3]


def test_seasonal_naive_repeats_the_last_season_once_it_has_one() -> None:
    season = [1.0, 2.0, 3.0]
    rows = [(0, t, season[t % 3], t == 0) for t in range(7)]
    out = SeasonalNaive(horizon=4, season_length=3).step(batch(rows))
    # Before a full season: the last value.
    assert out.yhat[0].tolist() == [1.0, 1.0, 1.0, 1.0]
    # From step 2 on, the next four steps exactly.
    for t in range(2, 7):
        assert out.yhat[t].tolist() == [season[(t + h) % 3] for h in range(1, 5)]


def test_seasonal_naive_reset_forgets_the_old_season() -> None:
    model = SeasonalNaive(horizon=1, season_length=2)
    model.step(batch([(0, 0, 1.0, True), (0, 1, 2.0, False), (0, 2, 1.0, False)]))
    out = model.step(batch([(0, 10, 9.0, True)]))
    assert out.yhat.tolist() == [[9.0]]


@pytest.mark.parametrize("name", ["ensemble", "cold_start"])
def test_the_run_summary_speaks_of_this_run_not_the_history_restored(name: str) -> None:
    # `streamer train` writes a checkpoint after scoring thousands of history steps; the
    # daemon started from it reported those as its own "error over the run", even when
    # it read nothing.
    make = cast(Callable[[], Ensemble | ColdStart], IMPLEMENTATIONS[name])
    history, live = split(stream(n_series=3, n_steps=40, seed=1), [20])
    trained = make()
    trained.step(history)
    assert trained.member_errors()  # the history run scored its forecasts

    restored = make()
    restored.load_state_dict(trained.state_dict())
    assert restored.member_errors() == {}  # nothing scored yet: nothing to say

    errors = trained.errors
    total, count = errors.total.copy(), errors.total_count
    trained.step(live)
    live_only = (errors.total - total) / (errors.total_count - count)
    restored.step(live)
    assert list(restored.member_errors().values()) == pytest.approx(live_only.tolist())
