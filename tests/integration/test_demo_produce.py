"""`streamer demo-produce` sends to a real Kafka broker and a real Mosquitto broker."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from kafka import KafkaConsumer

from tests.integration.conftest import Services
from tests.integration.daemon import Daemon, wait_until

REPO = Path(__file__).parents[2]


@pytest.mark.parametrize(
    ("kafka_streams", "mqtt_streams"),
    [("ticks,readings", "ticks,readings"), ("ticks", "readings")],  # the compose stack's
)
def test_demo_produce_sends_ticks_and_readings_to_kafka_and_mqtt(
    services: Services,
    make_topic: Callable[[int], str],
    mqtt_prefix: str,
    kafka_streams: str,
    mqtt_streams: str,
) -> None:
    ticks, readings = make_topic(2), make_topic(2)
    received: list[str] = []
    ready = threading.Event()

    def on_connect(client: mqtt.Client, *_: object) -> None:
        client.subscribe(f"{mqtt_prefix}/#", qos=1)

    listener = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    listener.on_connect = on_connect
    listener.on_subscribe = lambda *_: ready.set()
    listener.on_message = lambda _c, _u, message: received.append(message.topic)
    listener.connect(services.mqtt_host, services.mqtt_port)
    listener.loop_start()
    assert ready.wait(10)
    try:
        done = subprocess.run(
            [
                sys.executable, "-m", "streamer", "demo-produce",
                "--kafka", services.kafka_bootstrap, "--kafka-streams", kafka_streams,
                "--ticks-topic", ticks, "--readings-topic", readings,
                "--mqtt", f"{services.mqtt_host}:{services.mqtt_port}",
                "--mqtt-streams", mqtt_streams, "--mqtt-prefix", mqtt_prefix,
                "--symbols", "4", "--sensors", "3", "--step", "100ms", "--duration", "1s",
            ],
            cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        sent = int(done.stdout.strip().split()[1])
        assert sent >= 4 * 5  # at least half the steps of 1 s at 100 ms

        consumer = KafkaConsumer(
            ticks, readings,
            bootstrap_servers=services.kafka_bootstrap,
            auto_offset_reset="earliest",
            group_id=f"check-{uuid.uuid4().hex[:8]}",
            consumer_timeout_ms=5000,
        )  # fmt: skip
        by_topic: dict[str, list[dict[str, Any]]] = {ticks: [], readings: []}
        for record in consumer:
            by_topic[record.topic].append(json.loads(record.value))
        consumer.close()
        on_kafka = {"ticks": len(by_topic[ticks]), "readings": len(by_topic[readings])}
        # Each event of a stream went to every broker that stream is routed to.
        events = {"ticks": 4 * (sent // 7), "readings": sent - 4 * (sent // 7)}
        assert sent % 7 == 0  # 4 ticks and 3 readings a step (no dropout within 1 s)
        folder = {"ticks": "ticks", "readings": "sensors"}
        want_mqtt = {folder[s]: n for s, n in events.items() if s in mqtt_streams.split(",")}
        deadline = time.monotonic() + 20
        while len(received) < sum(want_mqtt.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        listener.loop_stop()
        listener.disconnect()
    for stream, n in events.items():
        assert on_kafka[stream] == (n if stream in kafka_streams.split(",") else 0), stream
    on_mqtt = Counter(t.split("/")[-2] for t in received)
    assert on_mqtt == want_mqtt
    assert {t["symbol"] for t in by_topic[ticks]} == {f"SYM{k:03d}" for k in range(4)}
    assert all(set(r["values"]) == {"temperature", "humidity"} for r in by_topic[readings])


def test_the_example_configs_sources_read_what_demo_produce_sends_by_default(
    services: Services, tmp_path: Path
) -> None:
    """A first try: the example config's Kafka and MQTT sources, as written but for where
    the brokers run, read `streamer demo-produce` with nothing but the brokers given."""
    example = yaml.safe_load((REPO / "config/streamer.example.yaml").read_text())
    kafka, mqtt_source = (s for s in example["sources"] if s["type"] in ("kafka", "mqtt"))
    kafka.update(bootstrap_servers=[services.kafka_bootstrap], group_id=f"try-{uuid.uuid4()}")
    mqtt_source.update(host=services.mqtt_host, port=services.mqtt_port)
    out = tmp_path / "forecasts.lp"
    config = {
        "sources": [kafka, mqtt_source],
        "window": {"step": "100ms", "idle_close_after": "1s"},
        "model": {"type": "last_value", "horizon": 2},
        "sinks": [{"type": "file", "path": str(out)}],
        "checkpoint": {"enabled": False},
        "http": {"enabled": False},
    }
    daemon = Daemon(config, tmp_path).start()
    daemon.wait_for_log("started:")
    produced = subprocess.run(
        [
            sys.executable, "-m", "streamer", "demo-produce",
            "--kafka", services.kafka_bootstrap,
            "--mqtt", f"{services.mqtt_host}:{services.mqtt_port}",
            "--symbols", "2", "--sensors", "2", "--step", "100ms", "--duration", "3s",
        ],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert produced.returncode == 0, produced.stderr
    assert "ticks to Kafka" in produced.stderr
    assert "readings to MQTT" in produced.stderr
    want = {"SYM000", "SYM001", *(f"sensor-00{k}/{v}" for k in (0, 1) for v in VALUES)}

    def series_seen() -> set[str]:
        text = out.read_text() if out.exists() else ""
        return set(re.findall(r"^observed,.*?series=([^, ]+)", text, flags=re.MULTILINE))

    wait_until(lambda: want <= series_seen(), 60, f"observed points of {want}", daemon)
    assert daemon.stop() == 0


VALUES = ("temperature", "humidity")
