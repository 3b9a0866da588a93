"""One model lineage for a group of replicas, on Kafka's own machinery.

Three single-partition topics per group `G`:

- `G-trainer`: never written; the replicas' consumers of it form the group `G-trainer`,
  and the one the broker assigns its partition trains (a killed trainer's partition
  moves to another replica within the session timeout, a stopped one's at once);
- `G-models` (compacted, key `model`): each promoted version's weights, written in a
  transaction whose id is `G-trainer`, so a new trainer's first publish fences the old
  one's producer: a trainer that was replaced cannot publish any more;
- `G-windows` (size-bounded): the training windows each replica archives, keyed by
  instance, read by every replica (its own skipped) into its training store.

The election runs on its own thread (a consumer must poll to stay in its group); the
model and window readers are polled from the loop's thread.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
from kafka.errors import KafkaError, ProducerFencedError, TopicAlreadyExistsError

from streamer.core.errors import SourceError

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 32 * 1024 * 1024  # weights of a large net, a batch of windows
WINDOWS_RETENTION_BYTES = 256 * 1024 * 1024


class _Election(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, elected: threading.Event) -> None:
        self.elected = elected

    def on_partitions_assigned(self, assigned: Any) -> None:
        if assigned:
            self.elected.set()

    def on_partitions_revoked(self, revoked: Any) -> None:
        if revoked:
            self.elected.clear()

    def on_partitions_lost(self, lost: Any) -> None:
        self.on_partitions_revoked(lost)


class KafkaLineage:
    """The `LineageLink` of a consumer group's replicas (see module doc)."""

    def __init__(
        self,
        *,
        group_id: str,
        instance: str,
        settings: dict[str, Any],
        session_timeout_ms: int,
        replication_factor: int | None = None,
    ) -> None:
        self.group_id = group_id
        self.instance = instance.encode()
        self.settings = settings
        self.topics = {kind: f"{group_id}-{kind}" for kind in ("trainer", "models", "windows")}
        self._elected = threading.Event()
        self._stop = threading.Event()
        self._publisher: KafkaProducer | None = None
        try:
            self._create_topics(replication_factor or -1)
            self._elector = KafkaConsumer(
                group_id=self.topics["trainer"],
                enable_auto_commit=False,
                # Sticky: a replica joining does not take the role from the trainer.
                partition_assignment_strategy=(CooperativeStickyAssignor,),
                session_timeout_ms=session_timeout_ms,
                heartbeat_interval_ms=max(500, session_timeout_ms // 5),
                **settings,
            )
            self._elector.subscribe([self.topics["trainer"]], listener=_Election(self._elected))
            self._models = self._reader("models", isolation_level="read_committed")
            self._windows = self._reader("windows")
            self._producer = KafkaProducer(max_request_size=MAX_MESSAGE_BYTES, **settings)
        except KafkaError as exc:
            raise SourceError(
                f"model lineage of group {group_id!r}: cannot reach Kafka at "
                f"{settings['bootstrap_servers']}: {type(exc).__name__}: {exc}"
            ) from None
        self._thread = threading.Thread(target=self._elect, name="trainer-election", daemon=True)
        self._thread.start()

    def _create_topics(self, replication: int) -> None:
        admin = KafkaAdminClient(**self.settings)
        topics = self.topics
        configs = {
            topics["trainer"]: {},
            topics["models"]: {"cleanup.policy": "compact"},
            topics["windows"]: {"retention.bytes": str(WINDOWS_RETENTION_BYTES)},
        }
        for name, config in configs.items():
            config = {**config, "max.message.bytes": str(MAX_MESSAGE_BYTES)}
            options = {"num_partitions": 1, "replication_factor": replication, "configs": config}
            try:
                admin.create_topics({name: options}, wait_for_metadata=True)
            except TopicAlreadyExistsError:
                admin.wait_for_topics([name])
        admin.close()

    def _reader(self, kind: str, **extra: Any) -> KafkaConsumer:
        reader = KafkaConsumer(
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_bytes=MAX_MESSAGE_BYTES,
            max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
            **extra,
            **self.settings,
        )
        reader.assign([TopicPartition(self.topics[kind], 0)])
        return reader

    def _elect(self) -> None:
        while not self._stop.is_set():
            try:
                self._elector.poll(timeout_ms=500)
            except KafkaError as exc:  # the broker is away: whoever holds the role keeps it
                log.debug("trainer election: %s", exc)
                self._stop.wait(1.0)

    @property
    def trainer(self) -> bool:
        return self._elected.is_set()

    # --- weights ----------------------------------------------------------------------

    def publish(self, version: int, weights: bytes) -> None:
        try:
            if self._publisher is None:
                self._publisher = KafkaProducer(
                    transactional_id=self.topics["trainer"],
                    max_request_size=MAX_MESSAGE_BYTES,
                    **self.settings,
                )
                self._publisher.init_transactions()  # fences the trainer before this one
            self._publisher.begin_transaction()
            headers = [("version", str(version).encode())]
            topic = self.topics["models"]
            self._publisher.send(topic, key=b"model", value=weights, headers=headers)
            self._publisher.commit_transaction()
        except ProducerFencedError:
            log.warning("version %d not published: another replica trains now", version)
            self._publisher = None
        except KafkaError as exc:
            log.warning("version %d not published (%s); the next promotion is", version, exc)
            self._drop_publisher()

    def _drop_publisher(self) -> None:
        if self._publisher is not None:
            with contextlib.suppress(KafkaError):
                self._publisher.close(timeout=1)
            self._publisher = None

    def latest(self) -> tuple[int, bytes] | None:
        newest: tuple[int, bytes] | None = None
        for records in self._poll(self._models).values():
            for record in records:
                version = int(dict(record.headers or ())["version"])
                if newest is None or version > newest[0]:
                    newest = (version, record.value)
        return newest

    # --- windows ----------------------------------------------------------------------

    def send_windows(self, windows: bytes) -> None:
        try:
            self._producer.send(self.topics["windows"], key=self.instance, value=windows)
        except KafkaError as exc:
            log.debug("training windows not handed on: %s", exc)

    def take_windows(self) -> list[bytes]:
        return [
            record.value
            for records in self._poll(self._windows).values()
            for record in records
            if record.key != self.instance
        ]

    def _poll(self, reader: KafkaConsumer) -> dict[Any, list[Any]]:
        try:
            return dict(reader.poll(timeout_ms=0))
        except KafkaError as exc:
            log.debug("lineage reader: %s", exc)
            return {}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._drop_publisher()
        for client in (self._elector, self._models, self._windows, self._producer):
            try:
                client.close()
            except (KafkaError, OSError) as exc:
                log.debug("lineage: closing %s: %s", type(client).__name__, exc)
