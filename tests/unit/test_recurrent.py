"""The recurrent forecaster carries each series' state, and forgets it only on a reset."""

from __future__ import annotations

import numpy as np
import pytest

from models.recurrent import RecurrentForecaster
from tests.unit.test_forecasters import batch


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_forecast_depends_on_the_series_history_not_only_its_last_value(cell: str) -> None:
    model = RecurrentForecaster(horizon=3, cell=cell, hidden_size=8)  # type: ignore[arg-type]
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
