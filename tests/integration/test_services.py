"""Each test service is real and does what Streamer relies on, over real connections."""

from __future__ import annotations

import queue
import time
import uuid
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from kafka import KafkaConsumer, KafkaProducer

from tests.integration.conftest import Services


def _consume(consumer: KafkaConsumer, count: int, seconds: float) -> list[tuple[bytes, bytes]]:
    got: list[tuple[bytes, bytes]] = []
    deadline = time.monotonic() + seconds
    while len(got) < count and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            got.extend((r.key, r.value) for r in records)
    return got


def test_kafka_keyed_records_reach_a_consumer_group_and_commits_stick(
    services: Services, kafka_topic: str
) -> None:
    sent = [(f"series-{i % 7}".encode(), f'{{"value": {i}}}'.encode()) for i in range(200)]
    producer = KafkaProducer(bootstrap_servers=services.kafka_bootstrap)
    for key, value in sent:
        producer.send(kafka_topic, key=key, value=value)
    producer.flush()
    producer.close()

    group = f"group-{uuid.uuid4().hex[:8]}"
    settings = {
        "bootstrap_servers": services.kafka_bootstrap,
        "group_id": group,
        "auto_offset_reset": "earliest",
        "enable_auto_commit": False,
    }
    consumer = KafkaConsumer(kafka_topic, **settings)
    got = _consume(consumer, len(sent), seconds=30)
    consumer.commit()
    consumer.close()

    assert sorted(got) == sorted(sent)
    # A key always lands on one partition, so each series keeps its order.
    for key in {k for k, _ in sent}:
        assert [v for k, v in got if k == key] == [v for k, v in sent if k == key]

    # After the commit, the group resumes past everything it has read.
    again = KafkaConsumer(kafka_topic, **settings)
    assert _consume(again, 1, seconds=3) == []
    again.close()


def test_influxdb_point_written_is_read_back_with_flux(
    influx_client: InfluxDBClient, influx_bucket: str
) -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    point = (
        Point("forecast")
        .tag("series", "AAPL")
        .tag("horizon", "3")
        .field("yhat", 187.25)
        .time(at, WritePrecision.NS)
    )
    influx_client.write_api(write_options=SYNCHRONOUS).write(bucket=influx_bucket, record=point)

    tables = influx_client.query_api().query(
        f'from(bucket: "{influx_bucket}") |> range(start: 2026-01-01T00:00:00Z, '
        'stop: 2026-01-03T00:00:00Z) |> filter(fn: (r) => r._measurement == "forecast")'
    )
    rows = [record for table in tables for record in table.records]
    assert len(rows) == 1
    row = rows[0]
    assert (row.get_field(), row.get_value(), row.get_time()) == ("yhat", 187.25, at)
    assert (row.values["series"], row.values["horizon"]) == ("AAPL", "3")


def test_mqtt_qos1_message_is_received_by_a_wildcard_subscriber(
    services: Services, mqtt_prefix: str
) -> None:
    received: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    subscribed = queue.Queue[bool]()

    subscriber = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    subscriber.on_connect = lambda c, *_: c.subscribe(f"{mqtt_prefix}/+/temperature", qos=1)
    subscriber.on_subscribe = lambda *_: subscribed.put(True)
    subscriber.on_message = lambda _c, _u, message: received.put(message)
    subscriber.connect(services.mqtt_host, services.mqtt_port)
    subscriber.loop_start()
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    publisher.connect(services.mqtt_host, services.mqtt_port)
    publisher.loop_start()
    try:
        assert subscribed.get(timeout=10)
        info = publisher.publish(f"{mqtt_prefix}/s1/temperature", b'{"value": 21.5}', qos=1)
        info.wait_for_publish(timeout=10)
        message = received.get(timeout=10)
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        subscriber.loop_stop()
        subscriber.disconnect()

    assert message.topic == f"{mqtt_prefix}/s1/temperature"
    assert message.payload == b'{"value": 21.5}'
    assert message.qos == 1
