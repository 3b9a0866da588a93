"""The record types shared by connectors, the window and the models.

An `Observation` is one accepted value of one series at one event time; a `Rejection` is
an input that could not be used, kept with its original bytes and the reason. Both carry
the `Position` they came from, so a source commits only what the sinks acknowledged.
A `StepBatch` is what the window closed in one micro-batch, and `Forecasts` what a model
made of it: arrays over many series, so each stage works on all of them at once. The
per-event types are NamedTuples: immutable, and about twice as fast to make as frozen
dataclasses, which matters at one or more per event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import NDArray

SeriesKind = Literal["price", "sensor"]
I64 = NDArray[np.int64]
F64 = NDArray[np.float64]

NS_PER_S = 1_000_000_000

# Why an input was rejected. Counted, logged and dead-lettered under these names.
MALFORMED = "malformed"  # not JSON / line protocol / a CSV row we can read
MISSING_FIELD = "missing_field"  # the series, value or time field is absent
NON_NUMERIC = "non_numeric"  # the value is not a number
NON_FINITE = "non_finite"  # NaN or infinite
BAD_TIME = "bad_time"  # unreadable time, before 1971, or more than max_future ahead
UNKNOWN_SERIES = "unknown_series"  # not in pipeline.series_allowlist
LATE = "late"  # its step had closed (beyond allowed_lateness)
OVERSIZED = "oversized"  # a payload over pipeline.max_payload_bytes, not parsed
SINK_REJECTED = "sink_rejected"  # a sink refused the write (4xx) with its message
# In a scaled group: the series came on another partition before (input not keyed by it).
NOT_KEYED = "not_keyed_by_series"


class Position(NamedTuple):
    """Where a record was read: the source's name, a partition key and an offset in it.

    Kafka partitions are keyed `topic/3`; sources without partitions use `""`. A replay
    file's offset is the row number; MQTT's is the order of arrival.
    """

    source: str
    partition: str
    offset: int


class Observation(NamedTuple):
    """One value of one series at an event time (ns since the epoch)."""

    series: str
    time_ns: int
    value: float
    kind: SeriesKind = "sensor"
    position: Position | None = None


class Rejection(NamedTuple):
    """An input that was not used: why, in words, and its original bytes."""

    reason: str
    detail: str
    raw: bytes
    position: Position | None = None


class Event(NamedTuple):
    """Something the daemon did or saw (a retrain attempt, a drift), written as one point
    of `measurement` at `time_ns` by the sinks that keep points."""

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, float | int | bool | str]
    time_ns: int


@dataclass(frozen=True)
class StepBatch:
    """Steps closed by one call, one row per (series, step), ordered by slot then step.

    `values` has one column, or four (open, high, low, close) for ohlc; the last column
    is what models forecast. `filled` rows had no events (forward-filled); `reset` rows
    follow a gap longer than max_gap, or are a series' first step.
    """

    slots: I64
    series: NDArray[np.object_]
    kinds: NDArray[np.object_]
    steps: I64
    values: F64
    filled: NDArray[np.bool_]
    reset: NDArray[np.bool_]
    step_ns: int

    def __len__(self) -> int:
        return len(self.slots)

    @property
    def times_ns(self) -> I64:
        """Each step's start time."""
        return self.steps * self.step_ns

    @property
    def target(self) -> F64:
        """The value models forecast: the step's value, or its close for ohlc."""
        return self.values[:, -1]


@dataclass(frozen=True)
class ForecastErrors:
    """Forecasts scored when their target step closed with a real value: one row per
    (series, target step, horizon); `error` is actual minus forecast, `model` the tag of
    the forecaster that issued it."""

    series: NDArray[np.object_]
    slots: I64
    steps: I64
    horizon: I64
    error: F64
    scaled: F64  # |error| over the series' running std when the forecast was issued
    model: NDArray[np.object_]
    step_ns: int

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def times_ns(self) -> I64:
        """The target step's time (the point's timestamp)."""
        times: I64 = self.steps * self.step_ns
        return times


def concat_batches(batches: list[StepBatch]) -> StepBatch:
    """One StepBatch of several whose rows are each grouped by slot: the result's rows
    stay grouped by slot (a slot's rows of earlier batches first), as models stepping
    rank by rank need (`models.base.ranks`).

    >>> def batch(slots, steps):
    ...     n = len(slots)
    ...     return StepBatch(np.array(slots), np.array([f"s{i}" for i in slots], dtype=object),
    ...         np.array(["sensor"] * n, dtype=object), np.array(steps), np.zeros((n, 1)),
    ...         np.zeros(n, bool), np.zeros(n, bool), 1)
    >>> joined = concat_batches([batch([1, 1, 4], [7, 8, 3]), batch([0, 1], [5, 9])])
    >>> list(zip(joined.slots.tolist(), joined.steps.tolist()))
    [(0, 5), (1, 7), (1, 8), (1, 9), (4, 3)]
    """
    parts = [b for b in batches if len(b)] or batches[:1]
    if len(parts) == 1:
        return parts[0]
    slots = np.concatenate([b.slots for b in parts])
    order = np.argsort(slots, kind="stable")
    return StepBatch(
        slots=slots[order],
        series=np.concatenate([b.series for b in parts])[order],
        kinds=np.concatenate([b.kinds for b in parts])[order],
        steps=np.concatenate([b.steps for b in parts])[order],
        values=np.concatenate([b.values for b in parts])[order],
        filled=np.concatenate([b.filled for b in parts])[order],
        reset=np.concatenate([b.reset for b in parts])[order],
        step_ns=parts[0].step_ns,
    )


@dataclass(frozen=True)
class Forecasts:
    """Forecasts issued at closed steps: row i forecasts `series[i]` for the H steps
    after `steps[i]`. `lower`/`upper` bound each forecast, or are None when no interval
    is known yet. `model` is the tag that names the forecaster; `version` counts the
    promotions of a trained model's weights (None for models that are not trained).
    `weights`, for a combination of models, holds each member's weight [n, H] in it.
    Where rows came from different models (a cold start handing over in mid-batch),
    `models` and `versions` tag each row (version -1: not trained), and `parts()` gives
    the batch as parts of one model each.
    """

    series: NDArray[np.object_]
    steps: I64
    yhat: F64
    model: str
    step_ns: int
    lower: F64 | None = None
    upper: F64 | None = None
    version: int | None = None
    weights: dict[str, F64] | None = None
    models: NDArray[np.object_] | None = None
    versions: I64 | None = None

    def __len__(self) -> int:
        return len(self.steps)

    def row_models(self) -> NDArray[np.object_]:
        """The model tag of each row."""
        if self.models is not None:
            return self.models
        return np.full(len(self), self.model, dtype=object)

    def parts(self) -> list[Forecasts]:
        """The rows of each (model, version), in order of first appearance, as forecasts
        of one model each; `[self]` when every row has the same.

        >>> f = Forecasts(np.array(["a", "b", "c"], dtype=object), np.arange(3),
        ...     np.zeros((3, 1)), "lstm", 1, version=2,
        ...     models=np.array(["lstm", "baseline", "lstm"], dtype=object),
        ...     versions=np.array([2, -1, 2]))
        >>> [(p.model, p.version, p.series.tolist()) for p in f.parts()]
        [('lstm', 2, ['a', 'c']), ('baseline', None, ['b'])]
        """
        if self.models is None:
            return [self]
        versions = self.versions if self.versions is not None else np.full(len(self), -1)
        keys = list(zip(self.models.tolist(), versions.tolist(), strict=True))
        order: dict[tuple[str, int], list[int]] = {}
        for i, key in enumerate(keys):
            order.setdefault(key, []).append(i)
        return [
            self._rows(np.array(rows, dtype=np.int64), model, None if v < 0 else v)
            for (model, v), rows in order.items()
        ]

    def _rows(self, rows: I64, model: str, version: int | None) -> Forecasts:
        def take(a: F64 | None) -> F64 | None:
            return None if a is None else a[rows]

        weights = None if self.weights is None else {k: w[rows] for k, w in self.weights.items()}
        return Forecasts(
            self.series[rows],
            self.steps[rows],
            self.yhat[rows],
            model,
            self.step_ns,
            take(self.lower),
            take(self.upper),
            version,
            weights,
        )

    @property
    def horizon(self) -> int:
        return int(self.yhat.shape[1])

    def target_times_ns(self) -> I64:
        """[n, H]: the time each forecast is for (step start of steps + h)."""
        h = np.arange(1, self.horizon + 1, dtype=np.int64)
        times: I64 = (self.steps[:, None] + h[None, :]) * self.step_ns
        return times
