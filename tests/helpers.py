"""Small builders shared by unit and integration tests."""

from __future__ import annotations

import numpy as np

from connectors.base import Output
from streamer.records import Forecasts, StepBatch

STEP = 1_000_000_000
T = 1_790_000_000


def output(series: list[str], yhat: list[list[float]]) -> Output:
    """One closed step per series at time T, and its forecasts (yhat per horizon)."""
    n = len(series)
    names = np.array(series, dtype=object)
    steps = np.full(n, T, dtype=np.int64)
    batch = StepBatch(
        slots=np.arange(n),
        series=names,
        kinds=np.array(["price"] * n, dtype=object),
        steps=steps,
        values=np.array([[row[0]] for row in yhat]),
        filled=np.zeros(n, bool),
        reset=np.zeros(n, bool),
        step_ns=STEP,
    )
    return Output(batch, Forecasts(names, steps, np.array(yhat), "last_value", STEP))
