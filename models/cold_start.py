"""Baseline forecasts until the recurrent model has learnt something.

Untrained weights forecast noise, so a baseline (seasonal naive or last value) answers
first, tagged `model=baseline`. The recurrent model still sees every step from the
start, so its per-series state, its scalers and its replay buffer are ready the moment
its weights have trained on `min_train_steps`; from then on its forecasts are served.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.base import Forecaster
from models.recurrent import RecurrentForecaster
from streamer.records import Forecasts, StepBatch

BASELINE = "baseline"


class ColdStart:
    """A recurrent forecaster, answered for by a baseline until it has trained enough."""

    def __init__(
        self, model: RecurrentForecaster, baseline: Forecaster, min_train_steps: int
    ) -> None:
        self.model = model
        self.baseline = baseline
        self.min_train_steps = min_train_steps

    @property
    def trained(self) -> bool:
        return self.model.trained_steps >= self.min_train_steps

    @property
    def name(self) -> str:
        return self.model.name if self.trained else BASELINE

    @property
    def horizon(self) -> int:
        return self.model.horizon

    def step(self, batch: StepBatch) -> Forecasts:
        forecasts = self.model.step(batch)
        if self.trained:
            return forecasts
        fallback = self.baseline.step(batch)
        return dataclasses.replace(fallback, model=BASELINE, version=None)

    def reset(self, slots: NDArray[np.int64]) -> None:
        self.model.reset(slots)
        self.baseline.reset(slots)

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "baseline": self.baseline.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.baseline.load_state_dict(state["baseline"])
