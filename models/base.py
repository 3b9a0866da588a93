"""The interface every forecaster implements.

A forecaster is stateful per series: it keeps what it needs in preallocated arrays
indexed by the window's slot, and `step` consumes the closed steps of one micro-batch
in order (all series at once), returning forecasts for horizons 1..H issued at each.
A row with `reset` set starts that series' state afresh. State round-trips through
`state_dict` / `load_state_dict`, so a restored forecaster continues exactly.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

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


class Scorer(Protocol):
    """Scores closed steps against the forecasts made for them earlier, and gives new
    forecasts their intervals (`models.outcomes.Outcomes`)."""

    def observe(
        self, batch: StepBatch, forecasts: Forecasts
    ) -> tuple[ForecastErrors, Forecasts]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@runtime_checkable
class ScoresMembers(Protocol):
    """A forecaster made of several (a net and its baseline, an ensemble's members) that
    scores each of them on what arrives."""

    def member_errors(self) -> dict[str, float]:
        """Per member: the mean squared error of its forecasts scored so far (all series
        and horizons), NaN before any."""
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
