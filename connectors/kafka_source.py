"""Consume topics as a member of a consumer group, committing offsets by hand.

Positions are `topic/partition` -> next offset. Offsets are committed only when the
pipeline says so (after a checkpoint holds them). A restore seeks each partition to its
checkpointed position when the group assigns it; before partitions are revoked in a
rebalance, `on_revoke` (the pipeline's checkpoint) runs, so the next owner starts where
this one's outputs end. In a group of replicas (`group_mode`), assigned partitions are
paused until the pipeline restored their series' state, and offsets are committed by
the pipeline's changelog transaction instead (`connectors.kafka_changelog`).

A broker outage is waited out, however long: polls return nothing, the source says it
is not ready (so the window's idle clock stops and /readyz says why), and a commit that
fails is kept and tried again, newest offsets first, until the broker takes it. Nothing
is lost meanwhile: the checkpoint holds the positions, and a restart seeks to them.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
from kafka.errors import KafkaError

from connectors.base import RawRecord, StreamSource
from connectors.kafka_client import login_hint, tls_problem
from streamer.core.errors import SourceError
from streamer.core.records import Position

log = logging.getLogger(__name__)

COMMIT_TIMEOUT_MS = 3_000  # one commit's wait, while the pipeline thread waits on it
COMMIT_RETRY_AFTER = 10.0  # seconds after a failed commit before the next try
PROBLEM_LOG_EVERY = 60.0  # seconds between WARNING lines while Kafka is unreachable
# Seconds a first join may wait for the group's coordinator before that is a problem: a
# new broker makes its offsets topic when a group first asks for it, in a few seconds.
JOIN_GRACE = 30.0


def partition_key(tp: TopicPartition) -> str:
    return f"{tp.topic}/{tp.partition}"


def parse_partition_key(key: str) -> TopicPartition:
    topic, _, partition = key.rpartition("/")
    return TopicPartition(topic, int(partition))


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Runs on the client's IO thread while the loop's thread waits in `poll`."""

    def __init__(self, source: KafkaSource) -> None:
        self.source = source

    def on_partitions_revoked(self, revoked: Any) -> None:
        if revoked and self.source.on_revoke is not None:
            keys = sorted(map(partition_key, revoked))
            log.info("partitions revoked (%s): checkpointing first", ", ".join(keys))
            # On the IO thread a blocking commit of the consumer's own is not allowed.
            self.source.in_rebalance = True
            try:
                self.source.on_revoke(keys)
            finally:
                self.source.in_rebalance = False
        self.source.forget(revoked)

    def on_partitions_lost(self, lost: Any) -> None:
        if self.source.on_lost is None:
            self.on_partitions_revoked(lost)  # (its commit is refused if truly lost)
            return
        keys = sorted(map(partition_key, lost))
        log.warning("partitions lost (%s): this member was out of the group", ", ".join(keys))
        if keys:
            self.source.on_lost(keys)
        self.source.forget(lost)

    def on_partitions_assigned(self, assigned: Any) -> None:
        source = self.source
        mine = set(source.consumer.assignment())
        source._next = {tp: o for tp, o in source._next.items() if tp in mine}
        if assigned and source.on_assign is not None:
            # Held until their series' state is restored (`resume`).
            source.consumer.pause(*assigned)
            source.on_assign(sorted(map(partition_key, assigned)))
        for tp in assigned:
            offset = source.pending_seek.pop(partition_key(tp), None)
            if offset is not None:
                source.consumer.seek(tp, offset)
                source._next[tp] = offset  # the backlog from here counts as lag
        source._ask_ends = True


def _group_settings(group_mode: bool, session_timeout_ms: int | None) -> dict[str, Any]:
    """Consumer settings for a member of a group of replicas: only partitions that move
    are revoked in a rebalance (KIP-429), and offsets committed in a changelog
    transaction are waited for."""
    group: dict[str, Any] = {}
    if group_mode:
        group["partition_assignment_strategy"] = (CooperativeStickyAssignor,)
        group["isolation_level"] = "read_committed"
    if session_timeout_ms is not None:
        group["session_timeout_ms"] = session_timeout_ms
        group["heartbeat_interval_ms"] = max(500, session_timeout_ms // 5)
    return group


class KafkaSource(StreamSource):
    """A consumer-group member reading raw records from topics."""

    def __init__(
        self,
        name: str,
        *,
        topics: list[str],
        group_id: str,
        auto_offset_reset: str = "earliest",
        series_from: str = "payload",
        group_instance_id: str | None = None,
        group_mode: bool = False,
        session_timeout_ms: int | None = None,
        settings: dict[str, Any],
    ) -> None:
        self.name = name
        self.series_from = series_from
        self.on_revoke: Callable[[list[str]], None] | None = None
        self.on_assign: Callable[[list[str]], None] | None = None
        self.on_lost: Callable[[list[str]], None] | None = None
        self.in_rebalance = False
        self.pending_seek: dict[str, int] = {}
        self.problem: str | None = None  # why the source is not ready, for /readyz
        self._ready = False
        self._unsent: dict[TopicPartition, OffsetAndMetadata] = {}  # commits still due
        self._retry_commit_at = 0.0
        self._problem_logged = -float("inf")
        self._group = group_id
        self._joining = f"joining consumer group {group_id!r}"  # the problem until joined
        self._started = time.monotonic()
        self._coordinator_seen = False  # known once: a later loss of it is an outage
        self._next: dict[TopicPartition, int] = {}  # the next offset, by what was polled
        self._behind_by: int | float = 0
        # Each partition's end as the broker said when reading (re)started: at start, after
        # an outage, after an assignment; until the fetches report newer high watermarks.
        self._ends: dict[TopicPartition, int] = {}
        self._ask_ends = True
        group = _group_settings(group_mode, session_timeout_ms)
        where = f"source {name!r}: Kafka at {settings['bootstrap_servers']}"
        refused = tls_problem(settings)
        if refused is not None:
            raise SourceError(f"{where}: {refused}")
        try:
            self.consumer = KafkaConsumer(
                group_id=group_id,
                enable_auto_commit=False,
                auto_offset_reset=auto_offset_reset,
                # A topic created after start is noticed within this time.
                metadata_max_age_ms=30_000,
                group_instance_id=group_instance_id,
                **group,
                **settings,
            )
            self.consumer.subscribe(topics, listener=_Listener(self))
            # Know the topics' partitions before the first join: a member that joins
            # without them is assigned nothing until the next metadata refresh.
            for topic in topics:
                if self.consumer.partitions_for_topic(topic) is None:
                    log.warning(
                        "source %r: topic %r does not exist (yet); waiting for it", name, topic
                    )
        except KafkaError as exc:
            raise SourceError(f"{where}: cannot reach it: {exc}{login_hint(settings)}") from None
        self._servers = settings["bootstrap_servers"]

    def poll(self, max_records: int, timeout: float) -> list[RawRecord]:
        try:
            batches = self.consumer.poll(timeout_ms=int(timeout * 1000), max_records=max_records)
        except KafkaError as exc:
            self._note_problem(f"poll failed: {type(exc).__name__}: {exc}")
            return []
        self._check_connection()
        by_key = self.series_from == "key"
        out: list[RawRecord] = []
        for tp, records in batches.items():
            key = partition_key(tp)
            if records:
                self._next[tp] = records[-1].offset + 1
            for record in records:
                series = None
                if by_key and record.key is not None:
                    series = record.key.decode("utf-8", "replace")
                out.append(
                    RawRecord(record.value or b"", Position(self.name, key, record.offset), series)
                )
        self._behind_by = self._lag() - max_records
        if self._behind_by <= 0:
            self._ends = {}  # caught up: the fetches' high watermarks tell the rest
        return out

    def commit(self, positions: Mapping[str, int]) -> None:
        """Commit these next offsets; when the broker cannot take them now, keep them and
        try again later (never raise: the checkpoint already holds the positions)."""
        offsets = {
            parse_partition_key(key): OffsetAndMetadata(offset, "", -1)
            for key, offset in positions.items()
        }
        if self.in_rebalance:
            offsets = self._assigned(offsets)
            if offsets:
                # Queued ahead of the group's join request on the coordinator connection.
                self.consumer.commit_async(offsets, callback=self._commit_done)
            return
        self._unsent.update(offsets)
        if time.monotonic() < self._retry_commit_at:
            return  # failed a moment ago: the next checkpoint tries again
        self._unsent = self._assigned(self._unsent)
        if not self._unsent:
            return
        try:
            self.consumer.commit(dict(self._unsent), timeout_ms=COMMIT_TIMEOUT_MS)
        except KafkaError as exc:
            self._retry_commit_at = time.monotonic() + COMMIT_RETRY_AFTER
            self._note_problem(
                f"cannot commit offsets: {type(exc).__name__}: {exc}; "
                f"trying again every {COMMIT_RETRY_AFTER:.0f} s"
            )
            return
        self._unsent.clear()
        self._retry_commit_at = 0.0
        self._check_connection()

    @property
    def wants_commit(self) -> bool:
        """Offsets a failed commit left are due again: the pipeline checkpoints (and
        commits) at its next step rather than waiting for its interval."""
        return bool(self._unsent) and time.monotonic() >= self._retry_commit_at

    def _assigned(
        self, offsets: dict[TopicPartition, OffsetAndMetadata]
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        assigned = self.consumer.assignment()
        return {tp: offset for tp, offset in offsets.items() if tp in assigned}

    def _check_connection(self) -> None:
        """Ready while partitions are assigned and the group's coordinator answers (with
        a single broker down, it does not), and no commit is overdue."""
        if self.consumer._coordinator.coordinator_unknown():
            if self._coordinator_seen or time.monotonic() - self._started > JOIN_GRACE:
                self._note_problem(
                    f"Kafka at {self._servers} is unreachable (no group coordinator); "
                    "waiting for it, nothing is lost"
                )
            elif self.problem is None:
                self.problem = self._joining
                log.info(
                    "source %r: joining consumer group %r; its coordinator is not known yet "
                    "(a new broker makes its offsets topic on first use)",
                    self.name,
                    self._group,
                )
        elif not self._unsent:
            if self.problem == self._joining:
                log.info("source %r: joined consumer group %r", self.name, self._group)
            elif self.problem is not None:
                log.info("source %r: Kafka is reachable again (%s before)", self.name, self.problem)
                self._ask_ends = True  # the high watermarks are from before the outage
            self._coordinator_seen = True
            self.problem = None
            self._problem_logged = -float("inf")
        self._ready = bool(self.consumer.assignment()) and self.problem is None

    def _lag(self) -> int | float:
        """Records between what was polled and each partition's end: the end the broker
        gave when reading (re)started, or the newer high watermark the fetches report
        (kept by the client: no request). Unknown (infinite) until the broker answers."""
        if self._ask_ends and self._ready:
            try:
                assigned = list(self.consumer.assignment())
                self._ends = self.consumer.end_offsets(assigned, timeout_ms=COMMIT_TIMEOUT_MS)
                self._ask_ends = False
            except KafkaError as exc:
                log.debug("source %r: end offsets not known yet: %s", self.name, exc)
        if self._ask_ends:
            return math.inf
        lag = 0
        for tp, next_offset in self._next.items():
            end = max(self.consumer.highwater(tp) or 0, self._ends.get(tp, 0))
            lag += max(0, end - next_offset)
        return lag

    @property
    def caught_up(self) -> bool:
        """Within a batch of the end of every partition read so far (as of the last poll,
        where a backlog that a broker outage left is more than that)."""
        return self._behind_by <= 0

    def _note_problem(self, problem: str) -> None:
        self.problem = problem
        self._ready = False
        now = time.monotonic()
        if now - self._problem_logged >= PROBLEM_LOG_EVERY:
            self._problem_logged = now
            log.warning("source %r: %s", self.name, problem)

    def _commit_done(self, offsets: Any, response: Any) -> None:
        if isinstance(response, Exception):
            log.warning("source %r: commit before rebalance failed: %s", self.name, response)

    def seek(self, positions: Mapping[str, int]) -> None:
        self.pending_seek.update(positions)

    def forget(self, partitions: Any) -> None:
        """No lag is counted for partitions given up (a cooperative rebalance revokes
        some without assigning the rest anew)."""
        for tp in partitions:
            self._next.pop(tp, None)
            self._ends.pop(tp, None)

    def resume(self, partitions: list[str]) -> None:
        self.consumer.resume(*map(parse_partition_key, partitions))

    def pause(self, partitions: list[str]) -> None:
        assigned = self.consumer.assignment()
        held = [tp for tp in map(parse_partition_key, partitions) if tp in assigned]
        if held:
            self.consumer.pause(*held)

    def group_metadata(self) -> Any:
        return self.consumer.group_metadata()

    def end_offsets(self) -> dict[str, int]:
        """The end of each assigned partition (the next offset to be written): the newer
        of the high watermark the last fetches reported and the end the broker gave when
        reading (re)started. A partition with neither (its fetch not read yet) is asked
        for, so that its backlog counts in the lag too; the pipeline's position
        subtracted gives the lag."""
        assigned = self.consumer.assignment()
        unknown = [tp for tp in assigned if self.consumer.highwater(tp) is None]
        unknown = [tp for tp in unknown if tp not in self._ends]
        if unknown and self._ready:
            try:
                self._ends.update(self.consumer.end_offsets(unknown, timeout_ms=COMMIT_TIMEOUT_MS))
            except KafkaError as exc:
                log.debug("source %r: end offsets not known yet: %s", self.name, exc)
        out = {}
        for tp in assigned:
            known = [e for e in (self.consumer.highwater(tp), self._ends.get(tp)) if e is not None]
            if known:
                out[partition_key(tp)] = int(max(known))
        return out

    @property
    def ready(self) -> bool:
        """Partitions are assigned (not, say, waiting for a rebalance after a restart)
        and Kafka answers, as of the last poll (read from other threads, so cached)."""
        return self._ready

    def close(self) -> None:
        self.on_revoke = self.on_assign = self.on_lost = None  # the pipeline checkpointed
        self.consumer.close(autocommit=False)
