"""What other threads may read of the engine: immutable snapshots its threads publish.

The pipeline thread owns the sources (kafka-python's consumer is not thread-safe), the
window, the model and the counters; the sink writer's thread owns its retry state. Each
publishes a frozen snapshot by replacing one reference (atomic in CPython), and the
HTTP thread reads only those: never a live object, never a dict another thread mutates.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SourceStatus:
    """One source as the last micro-batch saw it."""

    name: str
    ready: bool
    problem: str | None = None
    partitions: tuple[str, ...] = ()  # assigned to this instance, as of the last stats


@dataclass(frozen=True)
class GroupStatus:
    """This replica's share of a group of replicas (scale-out)."""

    owned: tuple[str, ...] = ()  # partitions restored and being read
    restoring: tuple[str, ...] = ()  # assigned, their series' state not restored yet
    restored_series: int = 0  # in all, since start
    restore_seconds: float = 0.0
    changelog_pending: int = 0  # series changed since the last changelog commit
    changelog_commits: int = 0
    trainer: bool | None = None  # trains the group's model now (None: nothing to train)


@dataclass(frozen=True)
class Snapshot:
    """The pipeline at the end of its last micro-batch."""

    started: bool = False  # restored, or begun afresh: the model is loaded
    last_step_at: float = field(default_factory=time.monotonic)  # monotonic seconds
    sources: tuple[SourceStatus, ...] = ()
    events_in: int = 0
    rejected: Mapping[str, int] = field(default_factory=dict)  # by reason
    steps_closed: int = 0
    forecasts_out: int = 0
    live_series: int = 0
    lag: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (source, partition)
    model_version: int | None = None  # of the weights behind the latest forecasts
    retrains: Mapping[str, int] | None = None  # by outcome; None: the model does not retrain
    drifts: Mapping[str, int] | None = None  # by detector; None: drift is not monitored
    group: GroupStatus | None = None  # None: a single replica


@dataclass(frozen=True)
class WriterStatus:
    """The sink writer as its thread last left it."""

    failing: bool = False  # a sink is being retried
    problem: str | None = None  # why, for /readyz
    last_attempt_at: float = field(default_factory=time.monotonic)  # an attempt or a beat
