"""`streamer bridge`: MQTT readings reach a Kafka topic keyed by series, so a group of
replicas can share them out (real Mosquitto, real Kafka)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import yaml
from kafka import KafkaConsumer

from tests.integration.conftest import Services
from tests.integration.daemon import REPO, wait_until

SENSORS, READINGS = 8, 15
T0_MS = (int(time.time()) - 3600) * 1000


def test_the_bridge_forwards_every_value_keyed_by_its_series(
    services: Services, make_topic: Callable[[int], str], mqtt_prefix: str, tmp_path: Path
) -> None:
    topic = make_topic(6)
    config = {
        "sources": [
            {
                "type": "mqtt",
                "host": services.mqtt_host,
                "port": services.mqtt_port,
                "topics": [f"{mqtt_prefix}/#"],
                "client_id": f"{mqtt_prefix}-bridge",
            }
        ],
        "sinks": [
            {"type": "kafka", "topic": topic, "bootstrap_servers": [services.kafka_bootstrap]}
        ],
        "pipeline": {"dead_letter": {"type": "file", "path": str(tmp_path / "dead.jsonl")}},
    }
    path = tmp_path / "bridge.yaml"
    path.write_text(yaml.safe_dump(config))
    log = tmp_path / "bridge.log"
    with log.open("wb") as out:
        bridge = subprocess.Popen(
            [sys.executable, "-m", "streamer", "bridge", "-c", str(path)],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        wait_until(lambda: "keyed by series" in log.read_text(), 60, "the bridge started")
        time.sleep(1.0)  # its subscription made
        publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        publisher.connect(services.mqtt_host, services.mqtt_port)
        publisher.loop_start()
        for i in range(READINGS):
            for k in range(SENSORS):
                reading = {
                    "sensor_id": f"m{k}",
                    "values": {"temp": 20 + k + i / 10, "hum": 50 - k},
                    "ts": T0_MS + i * 1000,
                }
                info = publisher.publish(f"{mqtt_prefix}/m{k}", json.dumps(reading), qos=1)
                info.wait_for_publish(timeout=10)
        publisher.publish(f"{mqtt_prefix}/bad", b"{not json", qos=1).wait_for_publish(10)
        publisher.loop_stop()
        publisher.disconnect()

        consumer = KafkaConsumer(
            topic,
            bootstrap_servers=services.kafka_bootstrap,
            auto_offset_reset="earliest",
            consumer_timeout_ms=5_000,
        )
        got: list[tuple[int, str, dict[str, object]]] = []
        deadline = time.monotonic() + 60
        while len(got) < SENSORS * READINGS * 2 and time.monotonic() < deadline:
            got += [(r.partition, r.key.decode(), json.loads(r.value)) for r in consumer]
        consumer.close()
        bridge.send_signal(signal.SIGTERM)
        assert bridge.wait(30) == 0, log.read_text()[-3000:]
    finally:
        if bridge.poll() is None:
            bridge.kill()

    assert len(got) == SENSORS * READINGS * 2
    partitions: dict[str, set[int]] = {}
    for partition, key, value in got:
        assert value["series"] == key  # keyed by its series
        partitions.setdefault(key, set()).add(partition)
    assert sorted(partitions) == sorted(
        f"m{k}/{f}" for k in range(SENSORS) for f in ("hum", "temp")
    )
    assert all(len(p) == 1 for p in partitions.values())  # each series on one partition
    assert len(set().union(*partitions.values())) > 1  # and the series spread over several
    m3 = sorted((v["time"], v["value"]) for _, k, v in got if k == "m3/temp")
    assert m3 == [((T0_MS + i * 1000) * 1_000_000, 23 + i / 10) for i in range(READINGS)]
    dead = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert [d["reason"] for d in dead] == ["malformed"]
    assert "done: 121 messages, 240 values forwarded, 1 rejected" in log.read_text()
