"""The Kafka and MQTT sources against the real brokers: rebalances and reconnects."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from connectors import kafka_source
from connectors.kafka_client import client_settings
from connectors.kafka_source import KafkaSource
from connectors.mqtt_source import MqttSource
from tests.integration.conftest import Services
from tests.integration.proxy import CuttableProxy


def test_kafka_source_commits_before_its_partitions_are_revoked(
    services: Services, kafka_topic: str
) -> None:
    producer = KafkaProducer(bootstrap_servers=services.kafka_bootstrap)
    for i in range(40):
        producer.send(kafka_topic, key=f"k{i % 8}".encode(), value=b"%d" % i)
    producer.flush()
    producer.close()

    group = f"g-{uuid.uuid4().hex[:8]}"
    settings = client_settings(bootstrap_servers=[services.kafka_bootstrap], client_id="test")
    source = KafkaSource("ticks", topics=[kafka_topic], group_id=group, settings=settings)
    positions: dict[str, int] = {}
    revoked_with: list[dict[str, int]] = []

    def checkpoint(partitions: list[str]) -> None:  # the pipeline's, before a revocation
        revoked_with.append(dict(positions))
        source.commit(positions)

    source.on_revoke = checkpoint
    read = 0
    deadline = time.monotonic() + 30
    while read < 40 and time.monotonic() < deadline:
        for record in source.poll(100, 0.5):
            p = record.position
            positions[p.partition] = max(positions.get(p.partition, 0), p.offset + 1)
            read += 1
    assert read == 40

    # A second member joins: the group rebalances and the first gives partitions up.
    other = KafkaConsumer(kafka_topic, bootstrap_servers=services.kafka_bootstrap, group_id=group)
    deadline = time.monotonic() + 60
    while not revoked_with and time.monotonic() < deadline:
        source.poll(100, 0.2)
        other.poll(timeout_ms=200)
    assert revoked_with == [positions]
    read_partitions = [int(key.rsplit("/", 1)[1]) for key in positions]
    committed = {
        f"{kafka_topic}/{p}": other.committed(TopicPartition(kafka_topic, p))
        for p in read_partitions
    }
    other.close()
    source.close()
    assert committed == positions


def test_in_a_group_a_joining_replica_takes_only_the_partitions_that_move(
    services: Services, kafka_topic: str
) -> None:
    """Cooperative rebalancing: the member already there gives up only what moves to the
    newcomer and keeps reading the rest; the newcomer's partitions wait, paused, until
    its pipeline restored them."""
    group = f"g-{uuid.uuid4().hex[:8]}"
    settings = client_settings(bootstrap_servers=[services.kafka_bootstrap], client_id="test")

    def member(name: str) -> tuple[KafkaSource, list[list[str]], list[list[str]]]:
        source = KafkaSource(
            name, topics=[kafka_topic], group_id=group, group_mode=True, settings=settings
        )
        revoked: list[list[str]] = []
        assigned: list[list[str]] = []
        source.on_revoke = revoked.append
        source.on_assign = assigned.append
        return source, revoked, assigned

    first, first_revoked, first_assigned = member("first")
    deadline = time.monotonic() + 60
    while not first_assigned and time.monotonic() < deadline:
        first.poll(100, 0.2)
    assert len(first_assigned[0]) == 4  # all of them, to the only member
    first.resume(first_assigned[0])
    second, second_revoked, second_assigned = member("second")
    deadline = time.monotonic() + 60
    while not second_assigned and time.monotonic() < deadline:
        first.poll(100, 0.2)
        second.poll(100, 0.2)
    assert second_assigned, "the newcomer got nothing"
    (moved,) = second_assigned
    assert first_revoked == [moved]  # only what moved, not all four
    kept = set(first_assigned[0]) - set(moved)
    assert len(kept) == 2
    assert {f"{kafka_topic}/{tp.partition}" for tp in first.consumer.assignment()} == kept
    assert not second_revoked
    second.close()
    first.close()


def test_a_first_join_is_said_as_a_join_and_only_one_past_the_grace_as_an_outage(
    services: Services,
    kafka_topic: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A new broker makes its offsets topic when a group first asks for its coordinator,
    and answers seconds later: the log says the source is joining, not that Kafka is
    unreachable, unless that lasts longer than JOIN_GRACE."""
    caplog.set_level(logging.INFO, logger="connectors.kafka_source")
    settings = client_settings(bootstrap_servers=[services.kafka_bootstrap], client_id="test")

    def first_polls(name: str) -> str:
        group = f"g-{uuid.uuid4().hex[:8]}"
        source = KafkaSource(name, topics=[kafka_topic], group_id=group, settings=settings)
        with monkeypatch.context() as patch:  # the coordinator not known yet, as on a new broker
            patch.setattr(source.consumer._coordinator, "coordinator_unknown", lambda: True)
            for _ in range(3):
                source.poll(100, 0.1)
                assert not source.ready
        deadline = time.monotonic() + 30
        while not source.ready and time.monotonic() < deadline:
            source.poll(100, 0.2)
        assert source.ready
        assert source.problem is None
        source.close()
        return group

    group = first_polls("fresh")
    said = [(r.levelname, r.getMessage()) for r in caplog.records if "'fresh'" in r.getMessage()]
    assert said == [
        (
            "INFO",
            f"source 'fresh': joining consumer group {group!r}; its coordinator is "
            "not known yet (a new broker makes its offsets topic on first use)",
        ),
        ("INFO", f"source 'fresh': joined consumer group {group!r}"),
    ]

    monkeypatch.setattr(kafka_source, "JOIN_GRACE", 0.0)
    first_polls("slow")
    said = [(r.levelname, r.getMessage()) for r in caplog.records if "'slow'" in r.getMessage()]
    assert said[0][0] == "WARNING"
    assert "is unreachable (no group coordinator); waiting for it, nothing is lost" in said[0][1]
    assert said[1][1].startswith("source 'slow': Kafka is reachable again")


@pytest.fixture
def proxy(services: Services) -> Iterator[CuttableProxy]:
    p = CuttableProxy(services.mqtt_port)
    yield p
    p.close()


def test_mqtt_source_reconnects_and_gets_what_was_published_while_it_was_away(
    services: Services, mqtt_prefix: str, proxy: CuttableProxy
) -> None:
    source = MqttSource(
        "sensors",
        host="127.0.0.1",
        port=proxy.port,
        topics=[f"{mqtt_prefix}/+"],
        client_id=f"{mqtt_prefix}-client",
        series_from="topic",
    )
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    publisher.connect(services.mqtt_host, services.mqtt_port)
    publisher.loop_start()

    def publish(i: int) -> None:
        info = publisher.publish(f"{mqtt_prefix}/s{i}", json.dumps({"value": i}), qos=1)
        info.wait_for_publish(timeout=10)

    def read_until(wanted: set[str]) -> set[str]:
        got: set[str] = set()
        deadline = time.monotonic() + 30
        while not wanted <= got and time.monotonic() < deadline:
            got |= {str(r.series) for r in source.poll(100, 0.5)}
        return got

    try:
        publish(0)
        assert read_until({"s0"}) == {"s0"}
        proxy.pause()  # the broker becomes unreachable for the source
        deadline = time.monotonic() + 10
        while source.ready and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not source.ready  # noticed: idle time stops counting
        publish(1)  # while the source is away: kept by the broker for its session
        publish(2)
        time.sleep(1.5)
        assert not source.ready
        proxy.resume()
        # After paho's own reconnect. QoS 1 is at least once: s0 comes again if the cut
        # came before its acknowledgement reached the broker.
        assert {"s1", "s2"} <= read_until({"s1", "s2"}) <= {"s0", "s1", "s2"}
        deadline = time.monotonic() + 10
        while not source.ready and time.monotonic() < deadline:
            time.sleep(0.05)
        assert source.ready  # subscribed again
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        source.close()
