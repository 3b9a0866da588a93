"""Baseline forecasts until the recurrent model has learnt something, and shows it live.

Untrained weights forecast noise, so a baseline (seasonal naive or last value) answers
first, tagged `model=baseline`. The recurrent model still sees every step from the
start, so its per-series state, its scalers and its replay buffer are ready the moment
its weights have trained on `min_train_steps`. Both keep forecasting, and both are
scored on what arrives (`LiveErrors`): the model is served only while its recent
squared error, over all series and horizons, is below the baseline's. When new weights
are promoted the comparison starts afresh (the old weights' errors say nothing about
the new ones) and the current choice stands until `min_scored` forecasts of each have
been scored. A model that trains into something worse than the baseline hands the
stream back to it (each way with a margin of 2%, so near-equals do not flap), and each
hand-over is logged with the two errors.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.base import Forecaster, Trained, rank_groups
from models.live_errors import LiveErrors
from models.series_rows import Rows
from streamer.core.records import Forecasts, StepBatch

BASELINE = "baseline"
MODEL, FALLBACK = 0, 1  # members of the live errors
MARGIN = 0.02  # the model takes over below 0.98x the baseline's error, hands back above 1.02x

log = logging.getLogger(__name__)


class ColdStart:
    """A trained forecaster, answered for by a baseline until it has trained enough."""

    def __init__(
        self,
        model: Trained,
        baseline: Forecaster,
        min_train_steps: int,
        halflife: float = 500.0,
        compare: bool = True,
        min_scored: int = 50,
    ) -> None:
        self.model = model
        self.baseline = baseline
        self.min_train_steps = min_train_steps
        self.compare = compare  # False: serve as soon as trained enough, better or not
        self.min_scored = min_scored
        self.errors = LiveErrors(2, model.horizon, halflife)
        self.serving = False
        self.compared_version = model.version

    @property
    def trained(self) -> bool:
        """Whether the model serves: trained enough, and better than the baseline live."""
        return self.serving

    @property
    def name(self) -> str:
        return self.model.name if self.serving else BASELINE

    def _decide(self) -> None:
        """Serve the model iff it has trained enough and its recent error is lower."""
        if self.model.version != self.compared_version:
            self.compared_version = self.model.version
            self.errors.restart()
        enough = self.model.trained_steps >= self.min_train_steps
        if self.compare and self.errors.overall_count.min() < self.min_scored:
            return  # too few scores since the weights changed: the choice stands
        model, fallback = self.errors.overall.mean(axis=1)
        # A margin either way, so that near-equal errors do not hand the stream to and fro.
        margin = 1.0 - MARGIN if not self.serving else 1.0 + MARGIN
        better = bool(model < margin * fallback) or not self.compare
        if enough and better != self.serving:
            self.serving = better
            if not self.compare:
                log.info(
                    "%s takes over from the baseline: trained on %d steps (serve_if: trained)",
                    self.model.name,
                    self.model.trained_steps,
                )
                return
            log.info(
                "%s %s: its recent squared error is %.4g, the baseline's %.4g",
                self.model.name,
                "takes over from the baseline" if better else "hands back to the baseline",
                model,
                fallback,
            )

    @property
    def horizon(self) -> int:
        return self.model.horizon

    def step(self, batch: StepBatch) -> Forecasts:
        forecasts = self.model.step(batch)
        fallback = self.baseline.step(batch)
        both = np.stack([forecasts.yhat, fallback.yhat], axis=1)
        served = np.zeros(len(batch), dtype=bool)
        # Decided before each rank (the r-th step of every series) on what was scored
        # before it, so where micro-batches are cut does not move a hand-over.
        for rows in rank_groups(batch.slots):
            self._decide()
            served[rows] = self.serving
            slots, steps = batch.slots[rows], batch.steps[rows]
            self.errors.reset(slots[batch.reset[rows]])
            real = ~batch.filled[rows]
            self.errors.score(slots[real], steps[real], batch.target[rows][real])
            self.errors.record(slots, steps, both[rows])
        if len(batch) == 0:
            self._decide()
        if served.all() and (len(batch) or self.serving):
            return forecasts
        if not served.any():
            return dataclasses.replace(fallback, model=BASELINE, version=None)
        version = -1 if forecasts.version is None else forecasts.version
        return dataclasses.replace(
            forecasts,
            yhat=np.where(served[:, None], forecasts.yhat, fallback.yhat),
            models=np.where(served, forecasts.model, BASELINE).astype(object),
            versions=np.where(served, version, -1).astype(np.int64),
        )

    def member_errors(self) -> dict[str, float]:
        mse = self.errors.run_mse()
        if mse is None:
            return {}
        model, fallback = mse.tolist()
        return {self.model.name: model, self.baseline.name: fallback}

    def reset(self, slots: NDArray[np.int64]) -> None:
        self.model.reset(slots)
        self.baseline.reset(slots)
        self.errors.reset(slots)

    def take_rows(self, slots: NDArray[np.int64]) -> Rows:
        return {
            "model": self.model.take_rows(slots),
            "baseline": self.baseline.take_rows(slots),
            "errors": self.errors.take_rows(slots),
        }

    def put_rows(self, slots: NDArray[np.int64], rows: Rows) -> None:
        self.model.put_rows(slots, rows["model"])
        self.baseline.put_rows(slots, rows["baseline"])
        self.errors.put_rows(slots, rows["errors"])

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "baseline": self.baseline.state_dict(),
            "errors": self.errors.state_dict(),
            "serving": self.serving,
            "compared_version": self.compared_version,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.baseline.load_state_dict(state["baseline"])
        if "errors" in state:
            self.errors.load_state_dict(state["errors"])
            self.serving = bool(state["serving"])
            self.compared_version = state.get("compared_version", self.model.version)
