"""Series state by input partition in compacted Kafka topics, committed with the offsets.

For each input topic `T` of a group `G`, the topic `G-T-changelog` has as many partitions
as `T`, `cleanup.policy=compact`, and in partition p one record per series of T's
partition p: key the series, value its state (a tombstone removes it). A commit writes
the changed series' records and the input offsets in one Kafka transaction (the
transactional id is `G-<instance>`, so a restarted replica fences its own previous
incarnation, and the consumer's group metadata fences a member the group has moved
on from, KIP-447), so state and offsets always agree: a replica that takes a partition
over reads its changelog to the end (read_committed) and carries on from the committed
offset. Topics are created when first needed and checked when they exist.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import (
    CommitFailedError,
    FencedInstanceIdError,
    IllegalGenerationError,
    KafkaError,
    ProducerFencedError,
    TopicAlreadyExistsError,
    UnknownMemberIdError,
)

from streamer.core.errors import ChangelogFencedError, SourceError

log = logging.getLogger(__name__)

# The group moved on from this member: abort, drop the state, rejoin.
FENCED = (
    CommitFailedError,
    IllegalGenerationError,
    UnknownMemberIdError,
    FencedInstanceIdError,
)
READ_TIMEOUT_MS = 30_000  # one restore's wait for the broker, before it is an outage
PROGRESS_EVERY = 5.0  # seconds between progress lines of a long restore
MAX_RECORD_BYTES = 8 * 1024 * 1024  # a series' state is a few KB; this is the ceiling


def changelog_topic(group_id: str, topic: str) -> str:
    return f"{group_id}-{topic}-changelog"


def _split(partition: str) -> tuple[str, int]:
    topic, _, number = partition.rpartition("/")
    return topic, int(number)


class KafkaChangelog:
    """The `Changelog` of a consumer group's input partitions (see module doc)."""

    def __init__(
        self,
        *,
        group_id: str,
        instance: str,
        settings: dict[str, Any],
        replication_factor: int | None = None,
    ) -> None:
        self.group_id = group_id
        self.settings = settings
        self.replication_factor = replication_factor
        self.transactional_id = f"{group_id}-{instance}"
        self._checked: set[str] = set()  # input topics whose changelog is there
        try:
            self.admin = KafkaAdminClient(**settings)
            self.producer = KafkaProducer(
                transactional_id=self.transactional_id,
                max_request_size=MAX_RECORD_BYTES,
                # A checkpoint sends every changed series at once: big batches.
                batch_size=1024 * 1024,
                linger_ms=20,
                **settings,
            )
            self.producer.init_transactions()
            self.reader = KafkaConsumer(
                group_id=None,
                enable_auto_commit=False,
                isolation_level="read_committed",
                fetch_max_bytes=64 * 1024 * 1024,
                max_partition_fetch_bytes=MAX_RECORD_BYTES,
                **settings,
            )
        except KafkaError as exc:
            raise SourceError(
                f"changelog of group {group_id!r}: cannot reach Kafka at "
                f"{settings['bootstrap_servers']}: {type(exc).__name__}: {exc}"
            ) from None

    # --- topics -----------------------------------------------------------------------

    def _changelog_of(self, partition: str) -> TopicPartition:
        topic, number = _split(partition)
        if topic not in self._checked:
            self._ensure(topic)
            self._checked.add(topic)
        return TopicPartition(changelog_topic(self.group_id, topic), number)

    def _ensure(self, topic: str) -> None:
        """Create T's changelog with T's partition count, or check the one there."""
        name = changelog_topic(self.group_id, topic)
        wanted = self._partitions(topic)
        options = {
            "num_partitions": wanted,
            "replication_factor": self.replication_factor or -1,
            "configs": {"cleanup.policy": "compact"},
        }
        try:
            self.admin.create_topics({name: options}, wait_for_metadata=True)
            log.info("created changelog topic %s (%d partitions, compacted)", name, wanted)
            return
        except TopicAlreadyExistsError:
            self.admin.wait_for_topics([name])  # (another replica may have just made it)
        have = self._partitions(name)
        if have != wanted:
            raise SourceError(
                f"changelog topic {name!r} has {have} partitions, input topic {topic!r} has "
                f"{wanted}: a changelog partition holds the state of the input partition of "
                "the same number, so both must have as many. Adding input partitions moves "
                "series between partitions: reset the group (delete the changelog topic and "
                "the group's offsets) to start its state afresh"
            )

    def _partitions(self, topic: str) -> int:
        described = self.admin.describe_topics([topic])
        if not described or described[0].get("error_code", 0) or not described[0]["partitions"]:
            raise SourceError(f"topic {topic!r} is not known to Kafka (yet)")
        return len(described[0]["partitions"])

    # --- reading ----------------------------------------------------------------------

    def end(self, partition: str) -> int:
        try:
            tp = self._changelog_of(partition)
            return int(self.reader.end_offsets([tp], timeout_ms=READ_TIMEOUT_MS)[tp])
        except KafkaError as exc:
            raise SourceError(f"changelog of {partition}: {type(exc).__name__}: {exc}") from None

    def restore(self, partition: str, since: int = 0) -> tuple[dict[str, bytes | None], int]:
        """The newest committed record of each series of the input partition written at
        changelog offset `since` or later (None: removed there), and the offset read to."""
        try:
            return self._read(partition, since)
        except KafkaError as exc:
            raise SourceError(f"changelog of {partition}: {type(exc).__name__}: {exc}") from None

    def _read(self, partition: str, since: int) -> tuple[dict[str, bytes | None], int]:
        tp = self._changelog_of(partition)
        end = self.end(partition)
        self.reader.assign([tp])
        if since:
            self.reader.seek(tp, since)
        else:
            self.reader.seek_to_beginning(tp)
        state: dict[str, bytes | None] = {}
        start = moved = self.reader.position(tp)
        deadline = said = time.monotonic()
        deadline += READ_TIMEOUT_MS / 1000
        while (at := self.reader.position(tp)) < end:
            now = time.monotonic()
            if at > moved:  # reading on: not an outage
                moved, deadline = at, now + READ_TIMEOUT_MS / 1000
            if now - said >= PROGRESS_EVERY:
                said, done = now, (at - start) / max(1, end - start)
                log.info(
                    "restoring %s: %.0f%%, %d series so far", partition, 100 * done, len(state)
                )
            if now > deadline:
                raise SourceError(
                    f"changelog {tp.topic}[{tp.partition}]: read to offset {at} of {end}, "
                    f"then nothing for {READ_TIMEOUT_MS / 1000:.0f} s; Kafka is not answering"
                )
            for records in self.reader.poll(timeout_ms=500).values():
                for record in records:
                    state[record.key.decode()] = record.value
        self.reader.assign([])
        return state, end

    # --- writing ----------------------------------------------------------------------

    def commit(
        self,
        changes: Mapping[str, Mapping[str, bytes | None]],
        positions: Mapping[str, int],
        group: Any,
    ) -> None:
        """One transaction: the records, then the offsets (see module doc)."""
        if not any(changes.values()) and not positions:
            return  # nothing read, nothing changed: no transaction to make
        producer = self.producer
        try:
            producer.begin_transaction()
            for partition, records in changes.items():
                tp = self._changelog_of(partition)
                for series, value in records.items():
                    key = series.encode()
                    producer.send(tp.topic, key=key, value=value, partition=tp.partition)
            offsets = {
                TopicPartition(*_split(p)): OffsetAndMetadata(offset, "", -1)
                for p, offset in positions.items()
            }
            if offsets:
                producer.send_offsets_to_transaction(offsets, group)
            producer.commit_transaction()
        except ProducerFencedError:
            raise SourceError(
                f"group {self.group_id!r}: another process took over transactional id "
                f"{self.transactional_id!r}: two replicas run with the same instance name. "
                "Give each replica its own `instance` (e.g. instance: ${HOSTNAME})"
            ) from None
        except FENCED as exc:
            self._abort()
            raise ChangelogFencedError(
                f"group {self.group_id!r}: the commit of {len(positions)} partition(s) was "
                f"refused ({type(exc).__name__}): another member owns them now; their "
                "records since the last commit are read again there"
            ) from None
        except KafkaError as exc:
            self._abort()
            raise SourceError(
                f"changelog of group {self.group_id!r}: commit failed "
                f"({type(exc).__name__}: {exc}); tried again at the next checkpoint"
            ) from None

    def _abort(self) -> None:
        try:
            self.producer.abort_transaction()
        except KafkaError as exc:  # no transaction left to abort, or the broker is away
            log.debug("changelog: abort after a failed commit failed too: %s", exc)

    def close(self) -> None:
        for client in (self.producer, self.reader, self.admin):
            try:
                client.close()
            except (KafkaError, OSError) as exc:
                log.debug("changelog: closing %s: %s", type(client).__name__, exc)
