"""The two narrow interfaces at the edges: a `Source` to read from, a `Sink` to write to.

The pipeline is written against these alone; tests use the in-memory ones in
`connectors.memory`, and the real ones are tested against real servers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from streamer.core.records import (
    Event,
    ForecastErrors,
    Forecasts,
    Observation,
    Position,
    Rejection,
    StepBatch,
)


class RawRecord(NamedTuple):
    """One input as read: its bytes, where it was read, and the series when the
    transport names it (a Kafka key, an MQTT topic). A replay row also has its fields."""

    payload: bytes
    position: Position
    series: str | None = None
    fields: Mapping[str, Any] | None = None


class Source(Protocol):
    """Reads raw records; commits only positions whose outputs the sinks acknowledged."""

    name: str
    problem: str | None
    """Why the source is not ready, when it can say (shown by /readyz)."""
    on_revoke: Callable[[list[str]], None] | None
    """Called with the partitions the source is about to give up (a rebalance), so that
    what was read from them is checkpointed and committed first; the pipeline sets it."""

    def poll(self, max_records: int, timeout: float) -> list[RawRecord]:
        """Up to max_records, waiting at most timeout seconds for the first."""
        ...

    def commit(self, positions: Mapping[str, int]) -> None:
        """Mark everything before `positions[partition]` (the next offset) as done."""
        ...

    def seek(self, positions: Mapping[str, int]) -> None:
        """Continue reading at these positions (after a restore)."""
        ...

    @property
    def exhausted(self) -> bool:
        """True when the source will produce nothing more (a replay at its end)."""
        ...

    @property
    def wants_commit(self) -> bool:
        """True when the source cannot take much more without a commit."""
        ...

    @property
    def ready(self) -> bool:
        """True while the source is reading its stream (connected, partitions assigned).

        Time when a source is not ready does not count towards a series' idleness: a
        stream that is not being read says nothing about whether its series went quiet.
        """
        ...

    @property
    def caught_up(self) -> bool:
        """False while the source knows it is more than a batch behind its stream (a
        backlog after an outage): a series it has not reached yet is not quiet, so that
        time does not count towards idleness either."""
        ...

    def end_offsets(self) -> Mapping[str, int]:
        """The next offset to be written, by partition, for the consumer lag; empty for
        a source without offsets. Called on the loop's thread only."""
        ...

    def close(self) -> None: ...


class PartitionedSource(Source, Protocol):
    """A source whose partitions are shared out among the replicas of a group (a Kafka
    consumer group): each replica keeps the state of its own partitions' series."""

    on_assign: Callable[[list[str]], None] | None
    """Called with partitions just assigned; they are paused until `resume`, so that
    their series' state is restored before their records are read."""
    on_lost: Callable[[list[str]], None] | None
    """Called with partitions taken away without a revoke (this member was thrown out
    of the group): nothing can be committed for them any more."""

    def resume(self, partitions: list[str]) -> None: ...

    def pause(self, partitions: list[str]) -> None:
        """Read nothing more of these until they are assigned anew (fenced: another
        member owns them now)."""
        ...

    def group_metadata(self) -> Any:
        """What fences a stale member's commits (the consumer's group metadata)."""
        ...


class Changelog(Protocol):
    """Where the series state of each input partition is kept, so that a partition can
    move to another replica: one record per series, the newest one standing."""

    def restore(self, partition: str, since: int = 0) -> tuple[dict[str, bytes | None], int]:
        """The newest record of every series of this input partition written at or after
        changelog offset `since` (None: the series was removed there), and the offset
        read to: a local copy taken at `since` plus these is the whole state."""
        ...

    def end(self, partition: str) -> int:
        """Where the partition's changelog ends now (the state held is current while
        nothing was written after it)."""
        ...

    def commit(
        self,
        changes: Mapping[str, Mapping[str, bytes | None]],
        positions: Mapping[str, int],
        group: Any,
    ) -> None:
        """Write these series records (None removes one) by input partition, and commit
        the input positions with them, as one transaction; raise ChangelogFencedError if
        this member no longer owns them."""
        ...

    def close(self) -> None: ...


class LineageLink(Protocol):
    """How the replicas of a group keep one model lineage: which one trains, the
    weights it publishes, and the training windows every replica hands on to the rest."""

    @property
    def trainer(self) -> bool:
        """This replica trains the group's model now (elected through the broker)."""
        ...

    def publish(self, version: int, weights: bytes) -> None:
        """Publish promoted weights; only the elected trainer's publish succeeds."""
        ...

    def latest(self) -> tuple[int, bytes] | None:
        """The newest weights published since the last call, if any."""
        ...

    def send_windows(self, windows: bytes) -> None: ...

    def take_windows(self) -> list[bytes]:
        """Windows the other replicas sent since the last call."""
        ...

    def close(self) -> None: ...


class PayloadDecoder(Protocol):
    """Turns one source's raw records into observations (`connectors.codecs.Decoder`)."""

    time_field: str
    """The field holding event time in a record that arrives as fields (a replay row)."""

    def decode(
        self, raw: bytes, now_ns: int, position: Position | None = None, series: str | None = None
    ) -> tuple[list[Observation], list[Rejection]]:
        """The observations in one payload, and rejections for what could not be used."""
        ...

    def decode_mapping(
        self,
        event: Mapping[str, Any],
        time_value: Any,
        raw: bytes,
        now_ns: int,
        position: Position | None = None,
        series: str | None = None,
    ) -> tuple[list[Observation], list[Rejection]]:
        """The same, for a record that arrives as fields."""
        ...


@dataclass(frozen=True)
class Output:
    """What one micro-batch produced: closed steps (observed), forecasts, events, and
    the errors of earlier forecasts these steps settled."""

    observed: StepBatch
    forecasts: Forecasts
    events: tuple[Event, ...] = ()
    errors: ForecastErrors | None = None


class Sink(Protocol):
    """Writes outputs; `write` returns only once the destination has acknowledged them."""

    heartbeat: Callable[[], None]
    """Called at least once a second while the sink waits between its own retries; the
    sink writer sets it, so that liveness knows the sink is trying, not hung."""

    def check(self) -> None:
        """Raise SinkUnusableError, naming the cause, if the sink cannot be used as
        configured (credentials, permissions, destination): called once at start."""
        ...

    def write(self, output: Output) -> None: ...

    def flush(self) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs to make the output exact after a restore."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def start_fresh(self) -> None:
        """Called when there is no checkpoint to continue from."""
        ...

    def close(self) -> None: ...


class DeadLetter(Protocol):
    """Where rejected inputs go, with their original bytes and the reason."""

    def check(self) -> None:
        """Raise SinkUnusableError, naming the cause, if it cannot be used as configured
        (as `Sink.check`): called once at start."""
        ...

    def write(self, rejections: list[Rejection]) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


def _nothing() -> None:
    pass


def pause(seconds: float, heartbeat: Callable[[], None]) -> None:
    """Sleep, calling heartbeat at least once a second: waiting is not hanging."""
    ends = time.monotonic() + seconds
    while (left := ends - time.monotonic()) > 0:
        heartbeat()
        time.sleep(min(1.0, left))
    heartbeat()


class SinkBase:
    """Defaults every sink shares: nothing to check at start, no retries to beat in."""

    heartbeat: Callable[[], None] = staticmethod(_nothing)

    def check(self) -> None:
        pass


class AcknowledgedSink(SinkBase):
    """Defaults for a sink whose `write` returns only once the destination has the
    output: nothing to flush, and nothing in a checkpoint (replays overwrite or repeat).
    """

    def flush(self) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def start_fresh(self) -> None:
        pass


class StreamSource:
    """Defaults for a source of an endless stream that is always reading and never
    needs an early commit; sources override what differs."""

    problem: str | None = None  # why the source is not ready, when it says (for /readyz)
    on_revoke: Callable[[list[str]], None] | None = None

    @property
    def exhausted(self) -> bool:
        return False

    @property
    def wants_commit(self) -> bool:
        return False

    @property
    def ready(self) -> bool:
        return True

    @property
    def caught_up(self) -> bool:
        return True

    def end_offsets(self) -> Mapping[str, int]:
        return {}
