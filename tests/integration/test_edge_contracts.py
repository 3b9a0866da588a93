"""The edge contracts (tests/contracts) against the real servers: Kafka and MQTT
sources, InfluxDB and Kafka sinks. A server that does not answer fails the test."""

from __future__ import annotations

import gc
import logging
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from influxdb_client import InfluxDBClient
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from connectors.base import Output, Sink, Source
from connectors.influx_sink import InfluxSink
from connectors.kafka_client import client_settings
from connectors.kafka_sink import KafkaSink, forecast_messages
from connectors.kafka_source import KafkaSource
from connectors.line_protocol import format_line
from connectors.mqtt_source import MqttSource
from connectors.points import lines
from streamer.core.records import Event
from tests.contracts import sink_contract, source_contract
from tests.contracts.sink_contract import FailingSinkHarness, Refusal, exploded, sample_output
from tests.contracts.source_contract import CuttableSourceHarness, SourceHarness
from tests.integration.conftest import Services
from tests.integration.daemon import epoch_ns
from tests.integration.proxy import CuttableProxy

PARTITIONS = 3
# Fail fast where a contract wants a failure: a second to bootstrap, block or answer.
FAST_KAFKA = {"bootstrap_timeout_ms": 1_000, "max_block_ms": 1_000, "request_timeout_ms": 1_000}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens here once the socket is closed


class KafkaSourceHarness:
    """A topic of several partitions, read by one consumer group that keeps its commits."""

    replays_uncommitted = True
    keeps_commits = True
    has_offsets = True
    finite = False

    def __init__(self, services: Services, topic: str) -> None:
        self.services, self.topic = services, topic
        self.group = f"contract-{uuid.uuid4().hex[:8]}"
        self.producer = KafkaProducer(bootstrap_servers=services.kafka_bootstrap)
        self.sent = 0

    def produce(self, payloads: Sequence[bytes]) -> None:
        futures = []
        for payload in payloads:  # spread over every partition
            futures.append(
                self.producer.send(self.topic, value=payload, partition=self.sent % PARTITIONS)
            )
            self.sent += 1
        for future in futures:
            future.get(timeout=10)

    def open(self) -> Source:
        settings = client_settings(
            bootstrap_servers=[self.services.kafka_bootstrap], client_id="contract"
        )
        return KafkaSource("kafka", topics=[self.topic], group_id=self.group, settings=settings)

    def close(self) -> None:
        self.producer.close()


class MqttSourceHarness:
    """A topic under its own prefix; the source's session (its client id) is kept."""

    replays_uncommitted = False  # acknowledged on receipt: MQTT has nothing to replay
    keeps_commits = False
    has_offsets = False
    finite = False

    def __init__(self, services: Services, prefix: str) -> None:
        self.services, self.prefix = services, prefix
        self.proxy = CuttableProxy(services.mqtt_port)  # sources connect through it
        self.publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.publisher.connect(services.mqtt_host, services.mqtt_port)
        self.publisher.loop_start()

    def produce(self, payloads: Sequence[bytes]) -> None:
        for payload in payloads:
            info = self.publisher.publish(f"{self.prefix}/s", payload, qos=1)
            info.wait_for_publish(timeout=10)
            assert info.is_published()

    def open(self) -> Source:
        return MqttSource(
            "mqtt",
            host="127.0.0.1",
            port=self.proxy.port,
            topics=[f"{self.prefix}/+"],
            client_id=f"{self.prefix}-source",
        )

    def cut(self) -> None:
        self.proxy.pause()

    def restore(self) -> None:
        self.proxy.resume()

    def close(self) -> None:
        self.publisher.loop_stop()
        self.publisher.disconnect()
        self.proxy.close()


class InfluxSinkHarness:
    """A fresh bucket; points come back one string per field (InfluxDB stores fields)."""

    exact = True

    def __init__(self, services: Services, client: InfluxDBClient, bucket: str) -> None:
        self.services, self.client, self.bucket = services, client, bucket
        self.proxy = CuttableProxy(int(services.influx_url.rsplit(":", 1)[1].strip("/")))
        self.unreachable: Callable[[], Sink] | None = lambda: self.sink(
            url=f"http://127.0.0.1:{closed_port()}", max_retries=0, timeout=1.0
        )
        self.wrong_credentials: tuple[Callable[[], Sink], str] | None = (
            lambda: self.sink(token="not-the-token", max_retries=0),
            "401 .*the token is not valid",
        )
        self.refusal: Callable[[Output], Refusal] | None = self.refuse

    def sink(self, **options: Any) -> InfluxSink:
        settings: dict[str, Any] = {
            "url": self.services.influx_url,
            "org": self.services.influx_org,
            "bucket": self.bucket,
            "token": self.services.influx_token,
            **options,
        }
        return InfluxSink(**settings)

    def open(self) -> Sink:
        return self.sink()

    def open_cuttable(self) -> Sink:
        return self.sink(url=f"http://127.0.0.1:{self.proxy.port}", max_retries=0, timeout=2.0)

    def cut(self) -> None:
        self.proxy.pause()

    def restore(self) -> None:
        self.proxy.resume()

    def close(self) -> None:
        self.proxy.close()

    def read(self) -> Counter[str]:
        tables = self.client.query_api().query(
            f'from(bucket: "{self.bucket}") |> range(start: 0)'  # one table per type: no group
        )
        out: Counter[str] = Counter()
        for table in tables:
            for r in table.records:
                tags = sorted(
                    (k, str(v))
                    for k, v in r.values.items()
                    if not k.startswith("_") and k not in ("result", "table") and v is not None
                )
                head = ",".join([r.get_measurement(), *(f"{k}={v}" for k, v in tags)])
                out[f"{head} {r.get_field()}={r.get_value()!r} {epoch_ns(r.get_time())}"] += 1
        return out

    def render(self, output: Output) -> list[str]:
        return [field for line in lines(output) for field in exploded(line)]

    def refuse(self, after: Output) -> Refusal:
        """A new series' points, and a string where `after` wrote a float (422)."""
        written = sample_output(["s9"], step=sink_contract.T + 9, seed=3)
        tags = {"kind": str(after.observed.kinds[0]), "series": str(after.observed.series[0])}
        at = int(after.observed.times_ns[0])
        conflicting = Event("observed", tags, {"value": "text"}, at)
        whole = Output(
            written.observed, written.forecasts, (*written.events, conflicting), written.errors
        )
        return Refusal(whole, written, [format_line("observed", tags, {"value": "text"}, at)])


class KafkaSinkHarness:
    """A topic; each message comes back as its key and value (at least once)."""

    exact = False

    def __init__(self, services: Services, topic: str) -> None:
        self.services, self.topic = services, topic
        self.unreachable: Callable[[], Sink] | None = lambda: KafkaSink(
            self.topic,
            {
                **client_settings(
                    bootstrap_servers=[f"127.0.0.1:{closed_port()}"], client_id="contract"
                ),
                **FAST_KAFKA,
            },
        )
        self.wrong_credentials: tuple[Callable[[], Sink], str] | None = None
        self.refusal: Callable[[Output], Refusal] | None = None

    def open(self) -> Sink:
        settings = client_settings(
            bootstrap_servers=[self.services.kafka_bootstrap], client_id="contract"
        )
        return KafkaSink(self.topic, settings)

    def read(self) -> Counter[str]:
        consumer = KafkaConsumer(
            bootstrap_servers=self.services.kafka_bootstrap, enable_auto_commit=False
        )
        try:
            partitions = [
                TopicPartition(self.topic, p) for p in consumer.partitions_for_topic(self.topic)
            ]
            consumer.assign(partitions)
            consumer.seek_to_beginning()
            ends = consumer.end_offsets(partitions)
            out: Counter[str] = Counter()
            deadline = time.monotonic() + 30
            while any(consumer.position(tp) < ends[tp] for tp in partitions):
                assert time.monotonic() < deadline, "the topic could not be read to its end"
                for records in consumer.poll(timeout_ms=500).values():
                    out.update(f"{r.key.decode()} {r.value.decode()}" for r in records)
            return out
        finally:
            consumer.close()

    def render(self, output: Output) -> list[str]:
        return [f"{k.decode()} {v.decode()}" for k, v in forecast_messages(output)]


@pytest.fixture
def kafka_source(services: Services, make_topic: Callable[[int], str]) -> Iterator[SourceHarness]:
    harness = KafkaSourceHarness(services, make_topic(PARTITIONS))
    yield harness
    harness.close()


@pytest.fixture
def mqtt_source(services: Services, mqtt_prefix: str) -> Iterator[CuttableSourceHarness]:
    harness = MqttSourceHarness(services, mqtt_prefix)
    yield harness
    harness.close()


@pytest.fixture
def influx_sink(
    services: Services, influx_client: InfluxDBClient, influx_bucket: str
) -> Iterator[InfluxSinkHarness]:
    harness = InfluxSinkHarness(services, influx_client, influx_bucket)
    yield harness
    harness.close()


@pytest.fixture
def kafka_sink(services: Services, make_topic: Callable[[int], str]) -> FailingSinkHarness:
    return KafkaSinkHarness(services, make_topic(2))


def name(contract: Callable[..., None]) -> str:
    return contract.__name__


@pytest.mark.parametrize("contract", source_contract.CONTRACT, ids=name)
@pytest.mark.parametrize("kind", ["kafka_source", "mqtt_source"])
def test_source_keeps_the_contract(
    kind: str, contract: Callable[[SourceHarness], None], request: pytest.FixtureRequest
) -> None:
    contract(request.getfixturevalue(kind))


@pytest.mark.parametrize("contract", sink_contract.CONTRACT, ids=name)
@pytest.mark.parametrize("kind", ["influx_sink", "kafka_sink"])
def test_sink_keeps_the_contract(
    kind: str, contract: Callable[[sink_contract.SinkHarness], None], request: pytest.FixtureRequest
) -> None:
    contract(request.getfixturevalue(kind))


@pytest.mark.parametrize(
    ("kind", "contract"),
    [
        ("influx_sink", sink_contract.unreachable_destination_is_an_outage),
        ("influx_sink", sink_contract.wrong_credentials_make_the_sink_unusable),
        ("influx_sink", sink_contract.refused_points_are_raised_with_reasons_and_the_rest_written),
        pytest.param(
            "kafka_sink",
            sink_contract.unreachable_destination_is_an_outage,
            # kafka-python leaves a socket unclosed for each connection it fails to make
            # (a fault of the client, see tests/integration/faults).
            marks=pytest.mark.filterwarnings(
                "ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning"
            ),
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else name(v),
)
def test_sink_reports_failures_by_their_kind(
    kind: str,
    contract: Callable[[FailingSinkHarness], None],
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # kafka-python's log records hold its failed connections (their sockets) until the
    # test's report; not kept, they are collected here, while this test's filters apply.
    caplog.set_level(logging.CRITICAL, logger="kafka")
    contract(request.getfixturevalue(kind))
    gc.collect()


# Kafka cannot be cut this way: its clients connect to the address the broker
# advertises, not through a proxy in front of the bootstrap address.
def test_mqtt_source_reconnects_and_reads_what_was_published_meanwhile(
    mqtt_source: CuttableSourceHarness,
) -> None:
    source_contract.reconnects_and_reads_what_was_produced_meanwhile(mqtt_source)


def test_influx_sink_reports_an_outage_and_the_same_write_lands_after_it(
    influx_sink: InfluxSinkHarness,
) -> None:
    sink_contract.outage_is_a_sink_error_and_the_same_write_lands_after_it(influx_sink)
