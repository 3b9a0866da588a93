"""The interface every forecaster implements.

A forecaster is stateful per series: it keeps what it needs in preallocated arrays
indexed by the window's slot, and `step` consumes the closed steps of one micro-batch
in order (all series at once), returning forecasts for horizons 1..H issued at each.
A row with `reset` set starts that series' state afresh. State round-trips through
`state_dict` / `load_state_dict`, so a restored forecaster continues exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from models.series_rows import Rows
from streamer.core.records import ForecastErrors, Forecasts, StepBatch


class Forecaster(Protocol):
    """Turns closed steps into forecasts for the next `horizon` steps."""

    @property
    def name(self) -> str:
        """The `model` tag written with each forecast."""
        ...

    @property
    def horizon(self) -> int: ...

    def step(self, batch: StepBatch) -> Forecasts:
        """Consume the batch's steps (in order per series) and forecast at each one."""
        ...

    def reset(self, slots: NDArray[np.int64]) -> None:
        """Forget these series' state, as if their next step were a reset (drift)."""
        ...

    def take_rows(self, slots: NDArray[np.int64]) -> Rows:
        """These series' state, one row each (`models.series_rows`), so that they can
        carry on in another forecaster of the same settings and weights."""
        ...

    def put_rows(self, slots: NDArray[np.int64], rows: Rows) -> None:
        """Take over series from `take_rows`, into these slots."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly, as plain values and arrays."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class Trained(Forecaster, Protocol):
    """A forecaster whose weights are trained: how often they were replaced, and on how
    many steps (a cold start serves a baseline until it has seen enough)."""

    @property
    def version(self) -> int: ...

    @property
    def trained_steps(self) -> int: ...


@dataclass(frozen=True)
class TrainSettings:
    """How new weights are trained on recorded windows (the `retrain` config section)."""

    burn_in: int = 16
    epochs: int = 1
    batch_size: int = 256
    learning_rate: float = 1e-3
    validation_fraction: float = 0.2


class Candidate(Protocol):
    """New weights trained on a copy, with the serving and the new weights' loss on the
    same held-out windows."""

    @property
    def loss_before(self) -> float: ...

    @property
    def loss_after(self) -> float: ...

    @property
    def windows(self) -> int:
        """Windows trained on, with repeats."""
        ...

    @property
    def stopped_early(self) -> bool: ...


class TrainingJob(Protocol):
    """A copy of the serving weights and of the stored windows, taken on the loop's
    thread; `train` is pure computation, for any thread."""

    @property
    def stored(self) -> int:
        """Windows in the copy."""
        ...

    def train(
        self,
        settings: TrainSettings,
        seed: int,
        half_life: float | None,
        should_stop: Callable[[], bool],
    ) -> Candidate:
        """Train the copy; `half_life` (in windows) weighs recent windows most."""
        ...


class Trainable(Trained, Protocol):
    """A forecaster that records the steps it sees and is retrained on them while it
    keeps serving (the recurrent net)."""

    @property
    def recorded(self) -> int:
        """Steps recorded for training so far."""
        ...

    @property
    def archived(self) -> int:
        """Windows of steps archived for training so far."""
        ...

    def training_job(self) -> TrainingJob: ...

    def promote(self, job: TrainingJob, candidate: Candidate, burn_in: int) -> None:
        """Serve the candidate's weights from now on, as the next version."""
        ...

    # One lineage across the replicas of a group: the trainer publishes its weights,
    # the others adopt them; every replica hands its training windows to the others.

    def weights(self) -> dict[str, Any]: ...

    def adopt_weights(self, weights: dict[str, Any]) -> None: ...

    def take_shared(self) -> Any:
        """Own training windows since the last call, opaque to the caller."""
        ...

    def add_shared(self, windows: Any) -> None: ...


class Scorer(Protocol):
    """Scores closed steps against the forecasts made for them earlier, and gives new
    forecasts their intervals (`models.outcomes.Outcomes`)."""

    def observe(
        self, batch: StepBatch, forecasts: Forecasts
    ) -> tuple[ForecastErrors, Forecasts]: ...

    def take_rows(self, slots: NDArray[np.int64]) -> Rows: ...

    def put_rows(self, slots: NDArray[np.int64], rows: Rows) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@runtime_checkable
class ScoresMembers(Protocol):
    """A forecaster made of several (a net and its baseline, an ensemble's members) that
    scores each of them on what arrives."""

    def member_errors(self) -> dict[str, float]:
        """Per member: the mean squared error of its forecasts this process scored (all
        series and horizons); empty before any."""
        ...


def ranks(slots: NDArray[np.int64]) -> NDArray[np.int64]:
    """Position of each row among the rows of its slot (rows are grouped by slot).

    >>> ranks(np.array([3, 3, 3, 5, 7, 7])).tolist()
    [0, 1, 2, 0, 0, 1]
    """
    if len(slots) == 0:
        return np.empty(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, slots[1:] != slots[:-1]])
    sizes = np.diff(np.r_[starts, len(slots)])
    out: NDArray[np.int64] = np.arange(len(slots)) - np.repeat(starts, sizes)
    return out


def rank_groups(slots: NDArray[np.int64]) -> list[NDArray[np.int64]]:
    """The rows of each rank (the r-th row of every slot in the batch), in row order: a
    model steps through a batch one rank at a time, every series together. One sort,
    not one scan of the batch per rank.

    >>> [g.tolist() for g in rank_groups(np.array([3, 3, 3, 5, 7, 7]))]
    [[0, 3, 4], [1, 5], [2]]
    """
    rank = ranks(slots)
    if len(rank) == 0:
        return []
    order = np.argsort(rank, kind="stable").astype(np.int64)
    return np.split(order, np.cumsum(np.bincount(rank))[:-1])


def grown(array: NDArray[Any], needed: int, fill: Any = 0) -> NDArray[Any]:
    """array with its first axis grown (doubling) to hold index needed - 1."""
    if needed <= len(array):
        return array
    size = max(needed, 2 * len(array), 16)
    out = np.full((size, *array.shape[1:]), fill, dtype=array.dtype)
    out[: len(array)] = array
    return out
