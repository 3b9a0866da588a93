"""The compose stack's daemon and demo producer, run as compose would run them but on
this machine's real Kafka, Mosquitto and InfluxDB.

The daemon reads config/container.yaml with the streamer service's environment from the
resolved docker-compose.yml; the producer gets the producer service's flags. What only a
container has is replaced: compose's host names by where the services run here, the
image's state volume by a temporary directory, and the fixed topics by this test's own.
Steps are shortened (200 ms instead of 1 s, and an earlier first training) so that the
LSTM serves within the test.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import yaml
from influxdb_client import InfluxDBClient

from tests import dockerfile
from tests.compose import flags, mounts, service
from tests.integration.conftest import Services
from tests.integration.daemon import REPO, Daemon, free_port, wait_until


def _series_by_model(client: InfluxDBClient, bucket: str) -> dict[str, set[str]]:
    tables = client.query_api().query(
        f'from(bucket: "{bucket}") |> range(start: -1h, stop: 1h) '
        '|> filter(fn: (r) => r._measurement == "forecast" and r._field == "yhat") '
        '|> group(columns: ["model", "series"]) |> first()'
    )
    out: dict[str, set[str]] = {}
    for table in tables:
        for r in table.records:
            out.setdefault(str(r["model"]), set()).add(str(r["series"]))
    return out


def healthcheck(port: int) -> int:
    """The Dockerfile's HEALTHCHECK command, against `port` instead of the container's;
    its exit status (0: healthy)."""
    command = [arg.replace(":8000/", f":{port}/") for arg in dockerfile.healthcheck_command()]
    command[0] = sys.executable if command[0] == "python" else command[0]
    return subprocess.run(command, capture_output=True, timeout=30, check=False).returncode


def test_the_stacks_producer_feeds_the_stacks_daemon_into_influxdb(
    services: Services,
    make_topic: Callable[[int], str],
    mqtt_prefix: str,
    influx_client: InfluxDBClient,
    influx_bucket: str,
    tmp_path: Path,
) -> None:
    ticks = make_topic(4)
    mqtt = f"{services.mqtt_host}:{services.mqtt_port}"
    config_file = Path(mounts("streamer")["/etc/streamer/streamer.yaml"])
    config = yaml.safe_load(config_file.read_text())
    kafka_source, mqtt_source = config["sources"]
    produced = flags("producer")
    # The daemon subscribes to what the producer publishes under its prefix.
    (sensor_topic,) = mqtt_source["topics"]
    assert sensor_topic.startswith(produced["mqtt-prefix"] + "/")
    port = free_port()
    state = tmp_path / "state"
    env = {
        **service("streamer")["environment"],
        "INFLUX_ORG": services.influx_org,
        "INFLUX_BUCKET": influx_bucket,
        "INFLUX_TOKEN": services.influx_token,
        # Compose's DNS names, the image's volume and the topics, as they are here.
        "STREAMER__SOURCES__0__BOOTSTRAP_SERVERS": f"[{services.kafka_bootstrap}]",
        "STREAMER__SOURCES__0__TOPICS": f"[{ticks}]",
        "STREAMER__SOURCES__1__HOST": services.mqtt_host,
        "STREAMER__SOURCES__1__PORT": str(services.mqtt_port),
        "STREAMER__SOURCES__1__TOPICS": json.dumps(
            [mqtt_prefix + sensor_topic.removeprefix(produced["mqtt-prefix"])]
        ),
        "STREAMER__SINKS__0__URL": services.influx_url,
        "STREAMER__CHECKPOINT__PATH": str(state / "checkpoint.db"),
        "STREAMER__PIPELINE__DEAD_LETTER__PATH": str(state / "dead-letter.jsonl"),
        "STREAMER__HTTP__BIND": f"127.0.0.1:{port}",
        # Shorter steps and an earlier first training: the LSTM serves within the test.
        "STREAMER__WINDOW__STEP": "200ms",
        "STREAMER__MODEL__MIN_TRAIN_STEPS": "300",
        "STREAMER__MODEL__SERVE_IF": "trained",
        "STREAMER__RETRAIN__SCHEDULE": "3s",
        "STREAMER__RETRAIN__MIN_NEW_STEPS": "200",
        "STREAMER__STATS__EVERY": "1s",
    }
    assert kafka_source["topics"] == [produced["ticks-topic"]]
    daemon = Daemon(config, tmp_path, env=env).start()

    here = {
        "kafka": services.kafka_bootstrap,
        "kafka-streams": produced["kafka-streams"],
        "ticks-topic": ticks,
        "mqtt": mqtt,
        "mqtt-streams": produced["mqtt-streams"],
        "mqtt-prefix": mqtt_prefix,
        "symbols": "3",
        "sensors": "3",
        "step": "200ms",
    }
    assert set(here) == set(produced), "the producer's flags changed: update this test"
    producer = subprocess.Popen(
        [sys.executable, "-m", "streamer", "demo-produce", "--duration", "180s"]
        + [f"--{name}={value}" for name, value in here.items()],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        symbols = {f"SYM{k:03d}" for k in range(3)}
        sensors = {f"sensor-{k:03d}/{v}" for k in range(3) for v in ("temperature", "humidity")}

        def lstm_serves_both_streams() -> bool:
            lstm = _series_by_model(influx_client, influx_bucket).get("lstm", set())
            return bool(lstm & symbols) and bool(lstm & sensors)

        wait_until(lstm_serves_both_streams, 90, "LSTM forecasts of ticks and readings", daemon)
        for path in ("/healthz", "/readyz"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
                assert answer.status == 200
        assert healthcheck(port) == 0, "the image's HEALTHCHECK fails on a healthy daemon"
    finally:
        producer.kill()
        _, errors = producer.communicate(timeout=30)
    assert daemon.stop() == 0, daemon.log()[-3000:]
    assert healthcheck(port) != 0, "the image's HEALTHCHECK passes with no daemon"
    seen = set().union(*_series_by_model(influx_client, influx_bucket).values())
    assert symbols <= seen, seen
    assert sensors <= seen, seen
    assert (state / "checkpoint.db").exists()
    log = daemon.log()
    assert services.influx_token not in log
    assert all(json.loads(line)["level"] for line in log.splitlines()), "not one JSON a line"
    assert b"Traceback" not in errors
