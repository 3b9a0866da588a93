"""The changelog connector against the real broker: what it keeps, and what it refuses."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from kafka.admin import KafkaAdminClient

from connectors.kafka_changelog import KafkaChangelog, changelog_topic
from streamer.core.errors import SourceError
from tests.integration.conftest import Services


def changelog(services: Services, group: str, instance: str = "one") -> KafkaChangelog:
    settings: dict[str, Any] = {"bootstrap_servers": [services.kafka_bootstrap]}
    return KafkaChangelog(group_id=group, instance=instance, settings=settings)


def test_the_newest_committed_record_of_each_series_is_restored(
    services: Services, make_topic: Callable[[int], str]
) -> None:
    topic = make_topic(3)
    group = f"cl-{uuid.uuid4().hex[:8]}"
    log = changelog(services, group)
    try:
        log.commit({f"{topic}/1": {"a": b"a1", "b": b"b1"}}, {}, None)
        log.commit({f"{topic}/1": {"a": b"a2", "b": None}, f"{topic}/2": {"c": b"c1"}}, {}, None)
        state, end = log.restore(f"{topic}/1")
        assert state == {"a": b"a2", "b": None}  # b removed by its tombstone
        assert end == log.end(f"{topic}/1") > 0
        assert log.restore(f"{topic}/2")[0] == {"c": b"c1"}
        assert log.restore(f"{topic}/0")[0] == {}
        # From an offset on: what a local copy taken there lacks. (The end a reader of
        # committed records sees moves once the transaction's markers are written, a
        # moment after the commit returns.)
        log.commit({f"{topic}/1": {"d": b"d1"}}, {}, None)
        deadline = time.monotonic() + 10
        while log.end(f"{topic}/1") == end and time.monotonic() < deadline:
            time.sleep(0.05)
        assert log.restore(f"{topic}/1", since=end)[0] == {"d": b"d1"}
    finally:
        log.close()
    admin = KafkaAdminClient(bootstrap_servers=services.kafka_bootstrap)
    (described,) = admin.describe_topics([changelog_topic(group, topic)])
    admin.delete_topics([changelog_topic(group, topic)])
    admin.close()
    assert len(described["partitions"]) == 3  # as many as the input


def test_an_aborted_transaction_is_never_restored(
    services: Services, make_topic: Callable[[int], str]
) -> None:
    topic = make_topic(1)
    log = changelog(services, f"cl-{uuid.uuid4().hex[:8]}")
    try:
        log.commit({f"{topic}/0": {"a": b"kept"}}, {}, None)
        log.producer.begin_transaction()  # a replica that dies mid-commit
        log.producer.send(
            changelog_topic(log.group_id, topic), key=b"a", value=b"torn", partition=0
        )
        log.producer.flush()
        log.producer.abort_transaction()
        assert log.restore(f"{topic}/0")[0] == {"a": b"kept"}
    finally:
        log.close()


def test_a_changelog_with_another_partition_count_is_refused(
    services: Services, make_topic: Callable[[int], str]
) -> None:
    topic = make_topic(4)
    group = f"cl-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=services.kafka_bootstrap)
    name = changelog_topic(group, topic)
    admin.create_topics({name: {"num_partitions": 2, "replication_factor": 1}})
    log = changelog(services, group)
    try:
        with pytest.raises(SourceError, match=r"has 2 partitions, input topic .* has 4"):
            log.restore(f"{topic}/0")
    finally:
        log.close()
        admin.delete_topics([name])
        admin.close()


def test_a_second_replica_with_the_same_instance_name_is_named_as_the_cause(
    services: Services, make_topic: Callable[[int], str]
) -> None:
    topic = make_topic(1)
    group = f"cl-{uuid.uuid4().hex[:8]}"
    first = changelog(services, group, "same")
    second = changelog(services, group, "same")  # fences the first
    try:
        with pytest.raises(SourceError, match="two replicas run with the same instance name"):
            first.commit({f"{topic}/0": {"a": b"x"}}, {}, None)
        second.commit({f"{topic}/0": {"a": b"y"}}, {}, None)
        assert second.restore(f"{topic}/0")[0] == {"a": b"y"}
    finally:
        first.close()
        second.close()
