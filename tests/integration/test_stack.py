"""The compose stack's daemon replicas, bridge and demo producer, run as compose would
run them but on this machine's real Kafka, Mosquitto and InfluxDB.

Two replicas read config/container.yaml with the streamer service's environment from
the resolved docker-compose.yml (as `docker compose up --scale streamer=2` runs them,
each with its own container host name); the bridge reads config/bridge.yaml, the
producer gets the producer service's flags. What only a container has is replaced:
compose's host names by where the services run here, the image's state volume by a
temporary directory, and the fixed topics and consumer groups by this test's own.
Each stream's steps are shortened (200 ms, and an earlier first training) so that the
LSTM serves within the test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from influxdb_client import InfluxDBClient

from tests import dockerfile
from tests.compose import flags, mounts, service
from tests.integration.conftest import Services
from tests.integration.daemon import REPO, Daemon, free_port, wait_until

DASHBOARD = json.loads((REPO / "config/grafana/dashboards/streamer-forecasts.json").read_text())


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


def test_the_stacks_replicas_bridge_and_producer_feed_influxdb_together(
    services: Services,
    make_topic: Callable[[int], str],
    mqtt_prefix: str,
    influx_client: InfluxDBClient,
    influx_bucket: str,
    tmp_path: Path,
) -> None:
    ticks, readings = make_topic(4), make_topic(4)
    config_file = Path(mounts("streamer")["/etc/streamer/streamer.yaml"])
    config = yaml.safe_load(config_file.read_text())
    bridge_file = Path(mounts("bridge")["/etc/streamer/bridge.yaml"])
    (mqtt_source,) = yaml.safe_load(bridge_file.read_text())["sources"]
    produced = flags("producer")
    # The bridge subscribes to what the producer publishes under its prefix.
    (sensor_topic,) = mqtt_source["topics"]
    assert sensor_topic.startswith(produced["mqtt-prefix"] + "/")
    run = tmp_path.name[-12:]
    with (tmp_path / "bridge.log").open("wb") as bridge_log:  # the child keeps its own
        bridge = subprocess.Popen(
            [sys.executable, "-m", "streamer", "bridge", "-c", str(bridge_file)],
            cwd=REPO,
            stdout=bridge_log,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                "STREAMER__SOURCES__0__HOST": services.mqtt_host,
                "STREAMER__SOURCES__0__PORT": str(services.mqtt_port),
                "STREAMER__SOURCES__0__TOPICS": json.dumps(
                    [mqtt_prefix + sensor_topic.removeprefix(produced["mqtt-prefix"])]
                ),
                "STREAMER__SOURCES__0__CLIENT_ID": f"{mqtt_prefix}-bridge",
                "STREAMER__SINKS__0__TOPIC": readings,
                "STREAMER__SINKS__0__BOOTSTRAP_SERVERS": f"[{services.kafka_bootstrap}]",
            },
        )

    def replica(name: str) -> tuple[Daemon, int]:
        port = free_port()
        state = tmp_path / name
        env = {
            **service("streamer")["environment"],
            "HOSTNAME": f"{name}-{run}",  # Docker's: each container its own
            "INFLUX_ORG": services.influx_org,
            "INFLUX_BUCKET": influx_bucket,
            "INFLUX_TOKEN": services.influx_token,
            # Compose's DNS names, the image's volume, the topics and groups, as here.
            **{
                f"STREAMER__STREAMS__{stream}__{key}": value
                for stream, topic in (("TICKS", ticks), ("SENSORS", readings))
                for key, value in {
                    "SOURCES__0__BOOTSTRAP_SERVERS": f"[{services.kafka_bootstrap}]",
                    "SOURCES__0__TOPICS": f"[{topic}]",
                    "SOURCES__0__GROUP_ID": f"stack-{stream.lower()}-{run}",
                    # Shorter steps and an earlier first training: the LSTM serves in
                    # the test.
                    "WINDOW__STEP": "200ms",
                    "MODEL__MIN_TRAIN_STEPS": "300",
                    "MODEL__SERVE_IF": "trained",
                }.items()
            },
            "STREAMER__SINKS__0__URL": services.influx_url,
            "STREAMER__CHECKPOINT__PATH": str(state / "checkpoint.db"),
            "STREAMER__PIPELINE__DEAD_LETTER__PATH": str(state / "dead-letter.jsonl"),
            "STREAMER__HTTP__BIND": f"127.0.0.1:{port}",
            "STREAMER__GROUP__SESSION_TIMEOUT": "10s",
            "STREAMER__RETRAIN__SCHEDULE": "3s",
            "STREAMER__RETRAIN__MIN_NEW_STEPS": "200",
            "STREAMER__STATS__EVERY": "1s",
        }
        return Daemon(config, tmp_path, name, env=env).start(), port

    replicas = [replica("streamer-1"), replica("streamer-2")]
    here = {
        "kafka": services.kafka_bootstrap,
        "kafka-streams": produced["kafka-streams"],
        "ticks-topic": ticks,
        "mqtt": f"{services.mqtt_host}:{services.mqtt_port}",
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
            return symbols | sensors <= lstm

        wait_until(lstm_serves_both_streams, 150, "LSTM forecasts of every series", None)
        every = {f"{t}/{p}" for t in (ticks, readings) for p in range(4)}

        def settled() -> bool:
            """Both ready, and between them reading every partition (after the
            rebalances of their joining)."""
            for daemon, _ in replicas:
                assert daemon.running(), daemon.log()[-3000:]
            answers = [_readyz(port) for _, port in replicas]
            read = [_partitions(body) for _, body in answers]
            return all(status == 200 for status, _ in answers) and set().union(*read) == every

        wait_until(settled, 60, "both replicas ready, every partition read", None)
        owned = {}
        for daemon, port in replicas:
            assert daemon.running(), daemon.log()[-3000:]
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as got:
                assert got.status == 200
            owned[daemon.config_path.stem] = _partitions(_readyz(port)[1])
            assert healthcheck(port) == 0, "the image's HEALTHCHECK fails on a healthy daemon"
        assert set().union(*owned.values()) == every, owned  # between them, every partition
        assert not set.intersection(*owned.values()), owned  # each read by one replica
        shown = _instances_panel(influx_client, influx_bucket)
        assert set(shown) == {f"streamer-{i}-{run}" for i in (1, 2)}, shown
        assert set().union(*shown.values()) == every, shown
    finally:
        producer.kill()
        _, errors = producer.communicate(timeout=30)
        bridge.send_signal(signal.SIGTERM)
    assert bridge.wait(30) == 0, (tmp_path / "bridge.log").read_text()[-3000:]
    for daemon, port in replicas:
        assert daemon.stop() == 0, daemon.log()[-3000:]
        assert healthcheck(port) != 0, "the image's HEALTHCHECK passes with no daemon"
        log = daemon.log()
        assert services.influx_token not in log
        assert all(json.loads(line)["level"] for line in log.splitlines()), "not JSON a line"
    seen = set().union(*_series_by_model(influx_client, influx_bucket).values())
    assert symbols | sensors <= seen, seen
    for stream in ("ticks", "sensors"):  # each stream its own checkpoint
        assert (tmp_path / "streamer-1" / f"checkpoint.{stream}.db").exists()
    assert b"Traceback" not in errors


def _readyz(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as got:
            return got.status, json.loads(got.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _partitions(readyz: dict[str, Any]) -> set[str]:
    """The partitions a replica's /readyz says its streams' sources read."""
    bodies = readyz["streams"].values() if "streams" in readyz else [readyz]
    return {p for body in bodies for read in body.get("partitions", {}).values() for p in read}


def _instances_panel(client: InfluxDBClient, bucket: str) -> dict[str, set[str]]:
    """The dashboard's Instances panel, as Grafana would run it over the last hour:
    each instance and the partitions it read at its last report."""
    (panel,) = [p for p in DASHBOARD["panels"] if p["title"] == "Instances"]
    flux = panel["targets"][0]["query"]
    for macro, value in {
        "v.defaultBucket": json.dumps(bucket),
        "v.timeRangeStart": "-1h",
        "v.timeRangeStop": "now()",
    }.items():
        flux = flux.replace(macro, value)
    rows = [r.values for t in client.query_api().query(flux) for r in t.records]
    shown: dict[str, set[str]] = {}  # a row per instance and stream
    for r in rows:
        shown.setdefault(str(r["instance"]), set()).update(str(r["partitions_owned"]).split(","))
    return shown
