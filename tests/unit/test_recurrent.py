"""The recurrent forecaster carries each series' state, and forgets it only on a reset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.recurrent import RecurrentForecaster
from models.replay_buffer import ReplayBuffer
from models.training import scaled_histories
from tests.unit.test_forecasters import batch


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_forecast_depends_on_the_series_history_not_only_its_last_value(cell: str) -> None:
    model = RecurrentForecaster(horizon=3, cell=cell, hidden_size=8)  # type: ignore[arg-type]
    torch.nn.init.normal_(model.net.head.weight)  # as if trained: untrained, the head adds 0
    # The same values in another order: the same running mean and variance, so the
    # scaled inputs at the last step are equal; only the carried state differs.
    rising = [(0, t, v, t == 0) for t, v in enumerate([1.0, 2.0, 4.0, 5.0, 6.0, 3.0, 3.0])]
    falling = [(1, t, v, t == 0) for t, v in enumerate([6.0, 5.0, 4.0, 2.0, 1.0, 3.0, 3.0])]
    out = model.step(batch(rising + falling))
    last = out.yhat[np.array(out.steps) == 6]
    assert not np.allclose(last[0], last[1])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_reset_forgets_the_state_and_the_scale(cell: str) -> None:
    sequence = [3.0, 1.0, 4.0, 1.0, 5.0]
    fresh = RecurrentForecaster(horizon=2, cell=cell, hidden_size=8)  # type: ignore[arg-type]
    expected = fresh.step(batch([(0, t, v, t == 0) for t, v in enumerate(sequence)])).yhat
    used = RecurrentForecaster(horizon=2, cell=cell, hidden_size=8)  # type: ignore[arg-type]
    used.step(batch([(0, t, 100.0 * t, t == 0) for t in range(10)]))
    again = used.step(batch([(0, 20 + t, v, t == 0) for t, v in enumerate(sequence)])).yhat
    np.testing.assert_allclose(again, expected, rtol=1e-5, atol=1e-6)


def test_the_state_slab_grows_for_slots_beyond_its_capacity() -> None:
    model = RecurrentForecaster(horizon=1, hidden_size=4)
    model.step(batch([(3, 0, 1.0, True)]))
    model.step(batch([(500, 0, 1.0, True)]))
    assert model.h.shape == (1, 501, 4) or model.h.shape[1] >= 501
    assert model.c is not None
    assert model.c.shape == model.h.shape


def test_same_seed_same_weights_whatever_the_global_random_state() -> None:
    import torch

    torch.manual_seed(123)
    a = RecurrentForecaster(horizon=2, seed=7)
    torch.manual_seed(456)
    b = RecurrentForecaster(horizon=2, seed=7)
    for (name, x), (_, y) in zip(
        a.net.state_dict().items(), b.net.state_dict().items(), strict=True
    ):
        assert torch.equal(x, y), name


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_new_weights_rebuild_each_series_state_from_its_recent_steps(cell: str) -> None:
    window = 8
    model = RecurrentForecaster(
        horizon=2,
        cell=cell,  # type: ignore[arg-type]
        hidden_size=6,
        replay=ReplayBuffer(window, stride=3, capacity_steps=100),
    )
    rng = np.random.default_rng(0)
    # Slot 0: 20 steps; slot 1: reset at step 15, so 5 steps since; slot 2: 3 steps.
    histories = {0: rng.normal(size=20), 1: rng.normal(size=20), 2: rng.normal(size=3)}
    rows = [
        (s, t, float(v), t == 0 or (s == 1 and t == 15))
        for s, h in histories.items()
        for t, v in enumerate(h)
    ]
    model.step(batch(rows))
    other = RecurrentForecaster(horizon=2, cell=cell, hidden_size=6, seed=5)  # type: ignore[arg-type]
    model.adopt(other.net, version=1, trained_steps=0, optimiser={})

    since_reset = {0: histories[0], 1: histories[1][15:], 2: histories[2]}
    for slot, values in since_reset.items():
        scaled = scaled_histories(values[None, :]).scaled[0, -window:]
        x = torch.as_tensor(scaled, dtype=torch.float32).view(-1, 1, 1)
        with torch.no_grad():
            _, state = other.net.rnn(x)
        h = state[0] if cell == "lstm" else state
        torch.testing.assert_close(model.h[:, slot], h[:, 0], rtol=1e-5, atol=1e-6)
        if cell == "lstm":
            assert model.c is not None
            torch.testing.assert_close(model.c[:, slot], state[1][:, 0], rtol=1e-5, atol=1e-6)
