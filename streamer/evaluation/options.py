"""What `evaluate` is asked (`EvaluateOptions`), what it reports (`Report`, one
`ModelRun` per model), and how it says where it is (`Progress`) or what is wrong
(`EvaluateError`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from connectors.codecs import TimeUnit
from streamer.config import schema as cfg
from streamer.config.models import COMPARED
from streamer.config.models import MODELS as REGISTRY
from streamer.config.schema import DriftConfig, IntervalsConfig, RetrainConfig
from streamer.core.records import Event
from streamer.engine.scoring import F64, Actuals, Issued

MODELS = REGISTRY.types()  # every model type a config can name
DEFAULT_MODELS = COMPARED
# The LSTM again, retraining on drift (on_drift: retrain) instead of only recording it.
DRIFT_RETRAIN = "lstm_drift_retrain"


class EvaluateError(ValueError):
    """The file or the options cannot be evaluated; the message says what and why."""


@dataclass(frozen=True)
class Progress:
    """Where a run is: model `index` (1-based) of `models`, `done` of `rows` file rows."""

    model: str
    index: int
    models: int
    done: int
    rows: int


@dataclass(frozen=True)
class EvaluateOptions:
    """What to evaluate, and how (the command line's flags)."""

    data: Path
    time_col: str
    targets: list[str]
    step_ns: int
    horizon: int
    warmup_fraction: float = 0.25
    normalize: Literal["none", "standard"] = "none"
    models: tuple[str, ...] = DEFAULT_MODELS
    season: int = 24
    time_unit: TimeUnit | None = None  # None: ISO 8601 unless the times are numbers
    model: cfg.ModelBase | cfg.NetSettings | None = None  # a config's model section
    retrain: RetrainConfig | None = None  # None: the defaults, with a window that fits
    intervals: IntervalsConfig = field(default_factory=IntervalsConfig)
    drift: DriftConfig = field(default_factory=DriftConfig)
    retrain_every: int = 0  # steps of event time between retrains; 0: RETRAIN_SEASONS
    warmup_epochs: int = 20
    max_gap: int = 5
    rows: int | None = None  # use only the first rows of the file
    zscore_rows: int | None = None  # statistics for `standard` from these first rows
    progress: Callable[[Progress], None] | None = None


@dataclass
class ModelRun:
    """What one model produced over the file."""

    actual: Actuals
    issued: Issued
    retrains: list[Event]
    drifts: list[Event]  # drift points
    seconds: float
    weights: dict[str, F64] | None = None  # an ensemble's member weights [n, H]
    served: dict[str, int] = field(default_factory=dict)  # scored forecasts per model tag


@dataclass(frozen=True)
class Report:
    """Per model: the metrics of `scoring.score`, by horizon bucket and per series; the
    runs, for plots and tests."""

    models: dict[str, dict[str, Any]]
    n_forecasts: int
    seconds: float
    runs: dict[str, ModelRun]
    warmup_step: int
    step_ns: int
    rows: int

    def as_json(self) -> dict[str, Any]:
        """The report as JSON values: a metric with nothing to score (NaN) is null, as
        JSON has no NaN and other readers refuse it."""
        return {
            "models": _nulled(self.models),
            "n_forecasts": self.n_forecasts,
            "rows": self.rows,
            "seconds": self.seconds,
        }


def _nulled(value: Any) -> Any:
    """`value` with every float that is not finite (and numpy's scalars) as JSON takes it."""
    if isinstance(value, dict):
        return {k: _nulled(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nulled(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
