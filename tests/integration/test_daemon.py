"""The daemon end to end against real Kafka, Mosquitto and InfluxDB.

Every series gets two events per 1 s step, averaged by the window (so a step rebuilt
from only some of its events after a restart would show a wrong value). The model is
last_value, so each forecast must equal the mean of the step it was issued at.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from influxdb_client import InfluxDBClient, Permission, PermissionResource
from kafka import KafkaConsumer, KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import Services
from tests.integration.daemon import (
    Daemon,
    ForecastKey,
    epoch_ns,
    forecast_points,
    free_port,
    wait_until,
)

S = 1_000_000_000
H = 3
N_SYMBOLS = N_SENSORS = 50


def t0() -> int:
    """A whole second an hour ago: recent enough for max_future, old enough to be past."""
    return (int(time.time()) - 3600) * S


def value(series: str, step: int, j: int) -> float:
    return round(100 + (sum(map(ord, series)) % 50) + step * 0.5 + j * 0.25, 4)


def events(t_start: int, steps: range) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(kind, series, payload) for every event of the given steps, in time order."""
    for step in steps:
        for j, offset in enumerate((100_000_000, 600_000_000)):
            ts_ms = (t_start + step * S + offset) // 1_000_000
            for k in range(N_SYMBOLS):
                sym = f"SYM{k:02d}"
                yield "price", sym, {"symbol": sym, "price": value(sym, step, j), "ts": ts_ms}
            for k in range(N_SENSORS):
                sid = f"sensor-{k:02d}"
                yield "sensor", sid, {"sensor_id": sid, "value": value(sid, step, j), "ts": ts_ms}


def expected_forecasts(t_start: int, closed_steps: int) -> dict[ForecastKey, float]:
    """Every forecast point the daemon must write for steps 0..closed_steps-1."""
    out = {}
    names = [f"SYM{k:02d}" for k in range(N_SYMBOLS)] + [
        f"sensor-{k:02d}" for k in range(N_SENSORS)
    ]
    for series in names:
        for step in range(closed_steps):
            mean = (value(series, step, 0) + value(series, step, 1)) / 2
            for h in range(1, H + 1):
                out[(series, h, t_start + (step + h) * S)] = mean
    return out


def base_config(services: Services, bucket: str, tmp_path: Path) -> dict[str, Any]:
    return {
        "instance": f"test-{uuid.uuid4().hex[:8]}",
        "window": {"step": "1s", "aggregation": "mean", "max_gap": 2},
        "model": {"type": "last_value", "horizon": H},
        "pipeline": {"max_wait": "100ms", "max_batch": 500},
        "sinks": [
            {
                "type": "influxdb",
                "url": services.influx_url,
                "org": services.influx_org,
                "bucket": bucket,
                "token": "${TEST_INFLUX_TOKEN}",
            }
        ],
        "checkpoint": {"path": str(tmp_path / "checkpoint.db"), "every": "500ms"},
        "stats": {"every": "1s"},
        "http": {"enabled": False},
    }


def kafka_sources(services: Services, ticks: str, readings: str) -> list[dict[str, Any]]:
    """Two sources; each gets its own consumer group (<instance>-<name>) by default."""
    common = {"type": "kafka", "bootstrap_servers": [services.kafka_bootstrap]}
    return [
        {**common, "name": "ticks", "kind": "price", "topics": [ticks]},
        {**common, "name": "readings", "kind": "sensor", "topics": [readings]},
    ]


def produce(
    services: Services, ticks: str, readings: str, items: Iterator[tuple[str, str, dict[str, Any]]]
) -> int:
    producer = KafkaProducer(bootstrap_servers=services.kafka_bootstrap, linger_ms=5)
    n = 0
    for kind, series, payload in items:
        topic = ticks if kind == "price" else readings
        producer.send(topic, key=series.encode(), value=json.dumps(payload).encode())
        n += 1
    producer.flush()
    producer.close()
    return n


def assert_exactly(client: InfluxDBClient, bucket: str, expected: dict[ForecastKey, float]) -> None:
    """Every expected forecast point is there, with its value and tags, once; no others."""
    points = forecast_points(client, bucket)
    keys = [key for key, _, _ in points]
    assert len(keys) == len(set(keys)), "a forecast point is stored twice"
    assert set(keys) == set(expected), (
        f"missing {len(set(expected) - set(keys))}, unexpected {len(set(keys) - set(expected))}"
    )
    wrong = [(k, v, expected[k]) for k, v, _ in points if abs(v - expected[k]) > 1e-9]
    assert not wrong, f"{len(wrong)} forecasts with wrong values, e.g. {wrong[:3]}"
    assert {model for _, _, model in points} == {"last_value"}


def assert_errors(client: InfluxDBClient, bucket: str, t_start: int, closed_steps: int) -> None:
    """Each closed step settled the forecasts made for it, once: every series rises by
    0.5 a step, so last_value's error at horizon h is 0.5 h."""
    tables = client.query_api().query(
        f'from(bucket: "{bucket}") |> range(start: 0) '
        '|> filter(fn: (r) => r._measurement == "forecast_error" and r._field == "abs_err") '
        "|> group()"
    )
    got = [
        (str(r.values["series"]), int(r.values["horizon"]), epoch_ns(r.get_time()), r.get_value())
        for table in tables
        for r in table.records
    ]
    keys = [g[:3] for g in got]
    assert len(keys) == len(set(keys)), "a forecast_error point is stored twice"
    per_series = sum(min(t, H) for t in range(1, closed_steps))
    assert len(got) == (N_SYMBOLS + N_SENSORS) * per_series
    assert all(abs(err - 0.5 * h) < 1e-9 for _, h, _, err in got)
    assert {t for _, _, t, _ in got} == {t_start + s * S for s in range(1, closed_steps)}


def wait_for_points(
    client: InfluxDBClient, bucket: str, n: int, daemon: Daemon, timeout: float = 120
) -> None:
    wait_until(
        lambda: len(forecast_points(client, bucket)) >= n, timeout, f"{n} forecast points", daemon
    )


@pytest.fixture
def env(services: Services) -> dict[str, str]:
    return {"TEST_INFLUX_TOKEN": services.influx_token}


def test_kafka_to_influxdb_writes_every_forecast_once(
    services: Services,
    make_topic: Callable[[int], str],
    influx_client: InfluxDBClient,
    influx_bucket: str,
    tmp_path: Path,
    env: dict[str, str],
) -> None:
    ticks, readings, start, steps = make_topic(4), make_topic(4), t0(), 20
    produce(services, ticks, readings, events(start, range(steps + 1)))  # step 20 stays open
    config = base_config(services, influx_bucket, tmp_path)
    config["sources"] = kafka_sources(services, ticks, readings)
    daemon = Daemon(config, tmp_path, env=env).start()
    expected = expected_forecasts(start, steps)
    wait_for_points(influx_client, influx_bucket, len(expected), daemon)
    assert daemon.stop() == 0
    assert_exactly(influx_client, influx_bucket, expected)
    assert_errors(influx_client, influx_bucket, start, steps)


def test_mqtt_to_influxdb_writes_every_forecast_once(
    services: Services,
    mqtt_prefix: str,
    influx_client: InfluxDBClient,
    influx_bucket: str,
    tmp_path: Path,
    env: dict[str, str],
) -> None:
    start, steps = t0(), 20
    config = base_config(services, influx_bucket, tmp_path)
    common = {"type": "mqtt", "host": services.mqtt_host, "port": services.mqtt_port, "qos": 1}
    config["sources"] = [
        {
            **common,
            "name": "ticks",
            "kind": "price",
            "topics": [f"{mqtt_prefix}/ticks/+"],
            "client_id": f"{mqtt_prefix}-ticks",
        },
        # Sensors named by the topic's wildcard level, not by the payload.
        {
            **common,
            "name": "readings",
            "kind": "sensor",
            "topics": [f"{mqtt_prefix}/sensors/+"],
            "series_from": "topic",
            "client_id": f"{mqtt_prefix}-readings",
        },
    ]
    daemon = Daemon(config, tmp_path, env=env).start()
    daemon.wait_for_log("started:")
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    publisher.connect(services.mqtt_host, services.mqtt_port)
    publisher.loop_start()
    try:
        infos = []
        for kind, series, payload in events(start, range(steps + 1)):
            if kind == "sensor":
                payload = {k: v for k, v in payload.items() if k != "sensor_id"}
                topic = f"{mqtt_prefix}/sensors/{series}"
            else:
                topic = f"{mqtt_prefix}/ticks/{series}"
            infos.append(publisher.publish(topic, json.dumps(payload), qos=1))
        for info in infos:
            info.wait_for_publish(timeout=30)
    finally:
        publisher.loop_stop()
        publisher.disconnect()
    expected = expected_forecasts(start, steps)
    wait_for_points(influx_client, influx_bucket, len(expected), daemon)
    assert daemon.stop() == 0
    assert_exactly(influx_client, influx_bucket, expected)


def test_sigkill_mid_stream_and_restart_loses_and_duplicates_nothing(
    services: Services,
    make_topic: Callable[[int], str],
    influx_client: InfluxDBClient,
    influx_bucket: str,
    tmp_path: Path,
    env: dict[str, str],
) -> None:
    ticks, readings, start, steps = make_topic(4), make_topic(4), t0(), 40
    config = base_config(services, influx_bucket, tmp_path)
    config["sources"] = kafka_sources(services, ticks, readings)
    items = list(events(start, range(steps + 1)))

    def paced_producer() -> None:
        chunk = len(items) // 40
        for i in range(0, len(items), chunk):
            produce(services, ticks, readings, iter(items[i : i + chunk]))
            time.sleep(0.1)

    producer = threading.Thread(target=paced_producer)
    first = Daemon(config, tmp_path, "first", env=env).start()
    producer.start()
    # Kill it once it has written some output and checkpointed, while events still flow.
    wait_for_points(influx_client, influx_bucket, 2_000, first, timeout=60)
    time.sleep(0.7)
    first.kill()
    written_before_restart = len(forecast_points(influx_client, influx_bucket))
    producer.join()

    second = Daemon(config, tmp_path, "second", env=env).start()
    expected = expected_forecasts(start, steps)
    wait_for_points(influx_client, influx_bucket, len(expected), second)
    assert second.stop() == 0
    assert "continuing from checkpoint" in second.log()
    assert 0 < written_before_restart < len(expected)
    assert_exactly(influx_client, influx_bucket, expected)
    assert_errors(influx_client, influx_bucket, start, steps)


def test_bad_input_reaches_the_dead_letter_topic_and_good_input_around_it_is_processed(
    services: Services,
    make_topic: Callable[[int], str],
    influx_client: InfluxDBClient,
    influx_bucket: str,
    tmp_path: Path,
    env: dict[str, str],
) -> None:
    ticks, readings, dead, forecasts = make_topic(1), make_topic(1), make_topic(1), make_topic(1)
    start = t0()
    ts = start // 1_000_000 + 300
    bad = {
        b"{not json": "malformed",
        json.dumps({"price": 1.0, "ts": ts}).encode(): "missing_field",
        json.dumps({"symbol": "SYM00", "price": "abc", "ts": ts}).encode(): "non_numeric",
        b'{"symbol": "SYM00", "price": NaN, "ts": %d}' % ts: "non_finite",
        b'{"symbol": "SYM00", "price": Infinity, "ts": %d}' % ts: "non_finite",
        json.dumps({"symbol": "SYM00", "price": 1.0, "ts": 1000}).encode(): "bad_time",
        json.dumps({"symbol": "SYM00", "price": 1.0, "ts": ts + 10**10}).encode(): "bad_time",
        json.dumps({"symbol": "NOT-LISTED", "price": 1.0, "ts": ts}).encode(): "unknown_series",
        # Poison: none of it may stop the daemon.
        b'{"symbol": "SYM00", "price": 1.0, "ts": %d, "x": %s}' % (ts, b"[" * 5_000): "malformed",
        b'{"symbol": "SYM00", "price": 1%s, "ts": %d}' % (b"0" * 309, ts): "non_finite",
        b'{"symbol": "\\ud800", "price": 1.0, "ts": %d}' % ts: "malformed",
        b'{"symbol": "SYM\xff", "price": 1.0, "ts": %d}' % ts: "malformed",
        b'{"symbol": "%s", "price": 1.0, "ts": %d}' % (b"S" * 1_000, ts): "malformed",
        b'{"symbol": "SYM00", "price": 1.0, "ts": %d, "pad": "%s"}'
        % (ts, b" " * 20_000): "oversized",
    }
    good = list(events(start, range(11)))
    producer = KafkaProducer(bootstrap_servers=services.kafka_bootstrap)
    for i, (kind, series, payload) in enumerate(good):
        topic = ticks if kind == "price" else readings
        producer.send(topic, key=series.encode(), value=json.dumps(payload).encode())
        if i == len(good) // 2:
            for raw in bad:
                producer.send(ticks, value=raw)
    producer.flush()
    producer.close()

    config = base_config(services, influx_bucket, tmp_path)
    config["sources"] = kafka_sources(services, ticks, readings)
    config["pipeline"]["series_allowlist"] = [f"SYM{k:02d}" for k in range(N_SYMBOLS)] + [
        f"sensor-{k:02d}" for k in range(N_SENSORS)
    ]
    config["pipeline"]["max_payload_bytes"] = 10_000
    config["pipeline"]["dead_letter"] = {
        "type": "kafka",
        "topic": dead,
        "bootstrap_servers": [services.kafka_bootstrap],
    }
    config["sinks"].append(
        {"type": "kafka", "topic": forecasts, "bootstrap_servers": [services.kafka_bootstrap]}
    )
    daemon = Daemon(config, tmp_path, env=env).start()
    expected = expected_forecasts(start, 10)
    wait_for_points(influx_client, influx_bucket, len(expected), daemon)
    assert daemon.stop() == 0
    assert_exactly(influx_client, influx_bucket, expected)

    letters = _consume_all(services, dead, len(bad))
    assert {value: dict(headers)["reason"].decode() for value, headers in letters} == bad
    issued = _consume_all(services, forecasts, 100 * 10)
    assert len(issued) == 100 * 10
    message = json.loads(issued[0][0])
    assert [f["horizon"] for f in message["forecasts"]] == [1, 2, 3]


def _consume_all(
    services: Services, topic: str, n: int
) -> list[tuple[bytes, list[tuple[str, bytes]]]]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=services.kafka_bootstrap,
        auto_offset_reset="earliest",
        group_id=f"check-{uuid.uuid4().hex[:8]}",
    )
    got: list[tuple[bytes, list[tuple[str, bytes]]]] = []
    deadline = time.monotonic() + 30
    while len(got) < n and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            got += [(r.value, list(r.headers)) for r in records]
    consumer.close()
    return got


LAG = "streamer_consumer_lag"


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The daemon's /metrics, by (name, sorted labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.read().decode())
            for s in family.samples
        }


def _rows(client: InfluxDBClient, flux: str) -> list[dict[str, Any]]:
    return [r.values for table in client.query_api().query(flux) for r in table.records]


def test_the_lstm_retrains_on_its_schedule_and_the_retrain_is_recorded_in_influxdb(
    services: Services,
    make_topic: Callable[[int], str],
    influx_client: InfluxDBClient,
    influx_bucket: str,
    tmp_path: Path,
    env: dict[str, str],
) -> None:
    ticks, readings, start = make_topic(2), make_topic(2), t0()
    produce(services, ticks, readings, events(start, range(60)))
    config = base_config(services, influx_bucket, tmp_path)
    config["sources"] = kafka_sources(services, ticks, readings)
    config["model"] = {
        "type": "lstm",
        "horizon": H,
        "hidden_size": 8,
        "min_train_steps": 1,
        "lags": 4,
        "serve_if": "trained",
    }
    config["retrain"] = {"schedule": "1s", "window": 16, "burn_in": 4, "min_new_steps": 100}
    config["sinks"][0]["name"] = "forecast-store"
    port = free_port()
    config["http"] = {"bind": f"127.0.0.1:{port}"}
    daemon = Daemon(config, tmp_path, env=env).start()

    retrains = (
        f'from(bucket: "{influx_bucket}") |> range(start: 0) '
        '|> filter(fn: (r) => r._measurement == "retrain") '
        '|> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")'
    )
    wait_until(
        lambda: any(r["promoted"] for r in _rows(influx_client, retrains)),
        90,
        "a promoted retrain point",
        daemon,
    )
    # Steps after the promotion are forecast by the LSTM, with its version.
    produce(services, ticks, readings, events(start, range(60, 70)))
    lstm_versions = (
        f'from(bucket: "{influx_bucket}") |> range(start: 0) '
        '|> filter(fn: (r) => r._measurement == "forecast" and r._field == "version") '
        '|> filter(fn: (r) => r.model == "lstm") |> group() |> distinct()'
    )
    wait_until(
        lambda: bool(_rows(influx_client, lstm_versions)), 60, "LSTM forecast points", daemon
    )
    # What the metrics endpoint says while it runs. The lag is refreshed every
    # stats.every (1 s), so it reaches 0 on every partition shortly after all is read.
    partitions = {f"{t}/{p}" for t in (ticks, readings) for p in range(2)}

    def caught_up() -> bool:
        lags = {dict(k[1])["partition"]: v for k, v in scrape(port).items() if k[0] == LAG}
        return set(lags) == partitions and not any(lags.values())

    wait_until(caught_up, 30, "zero consumer lag on every partition", daemon)
    metrics = scrape(port)
    assert metrics[("streamer_model_version", ())] >= 1
    assert metrics[("streamer_retrains_total", (("outcome", "promoted"),))] >= 1
    # Sinks go by their configured names.
    assert metrics[("streamer_sink_write_seconds_count", (("sink", "forecast-store"),))] >= 1
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as response:
        ready = json.loads(response.read())
    assert ready["status"] == "ready"
    # The one instance in the group reads every partition, and says so.
    assert {p for listed in ready["partitions"].values() for p in listed} == partitions
    assert daemon.stop() == 0

    attempt = next(r for r in _rows(influx_client, retrains) if r["promoted"])
    assert attempt["model"] == "lstm"
    assert attempt["version"] >= 1
    assert attempt["loss_after"] < attempt["loss_before"]
    assert attempt["seconds"] > 0
    assert attempt["windows"] > 0
    versions = {r["_value"] for r in _rows(influx_client, lstm_versions)}
    assert versions
    assert min(versions) >= 1
    # Before the first promotion, the baseline answered.
    models = {model for _, _, model in forecast_points(influx_client, influx_bucket)}
    assert models == {"baseline", "lstm"}
    assert "retrain (schedule): held-out loss" in daemon.log()
    stats = _rows(
        influx_client,
        f'from(bucket: "{influx_bucket}") |> range(start: 0) '
        '|> filter(fn: (r) => r._measurement == "streamer_stats" and r._field == "events_in")',
    )
    assert stats
    assert max(r["_value"] for r in stats) > 0


def refused_start(
    services: Services,
    make_topic: Callable[[int], str],
    bucket: str,
    tmp_path: Path,
    token: str,
) -> str:
    """Start the daemon with this InfluxDB token; it must exit 1. Its log."""
    config = base_config(services, bucket, tmp_path)
    config["sources"] = kafka_sources(services, make_topic(1), make_topic(1))
    daemon = Daemon(config, tmp_path, env={"TEST_INFLUX_TOKEN": token}).start()
    assert daemon.process is not None
    assert daemon.process.wait(60) == 1
    return daemon.log()


def test_a_wrong_influxdb_token_stops_the_start_with_exit_1_naming_the_sink(
    services: Services, make_topic: Callable[[int], str], influx_bucket: str, tmp_path: Path
) -> None:
    log = refused_start(services, make_topic, influx_bucket, tmp_path, "not-a-valid-token")
    assert f"bucket {influx_bucket!r}" in log
    assert "401" in log
    assert "the token is not valid" in log


def test_a_token_that_may_only_read_stops_the_start_with_exit_1_naming_the_cause(
    services: Services,
    make_topic: Callable[[int], str],
    influx_client: InfluxDBClient,
    influx_bucket: str,
    tmp_path: Path,
) -> None:
    org = influx_client.organizations_api().find_organizations(org=services.influx_org)[0]
    bucket = influx_client.buckets_api().find_bucket_by_name(influx_bucket)
    read = PermissionResource(type="buckets", id=bucket.id, org_id=org.id)
    auths = influx_client.authorizations_api()
    token = auths.create_authorization(
        org_id=org.id, permissions=[Permission(action="read", resource=read)]
    )
    try:
        log = refused_start(services, make_topic, influx_bucket, tmp_path, token.token)
    finally:
        auths.delete_authorization(token)
    assert f"bucket {influx_bucket!r}" in log
    assert "403" in log
    assert "the token may not write to the bucket" in log


def test_a_bucket_deleted_mid_run_is_an_outage_nothing_is_dead_lettered_or_lost(
    services: Services,
    make_topic: Callable[[int], str],
    influx_client: InfluxDBClient,
    influx_bucket: str,
    tmp_path: Path,
    env: dict[str, str],
) -> None:
    ticks, readings, start, steps = make_topic(2), make_topic(2), t0(), 20
    first, second = events(start, range(10)), events(start, range(10, steps + 1))
    produce(services, ticks, readings, first)
    config = base_config(services, influx_bucket, tmp_path)
    config["sources"] = kafka_sources(services, ticks, readings)
    config["pipeline"]["dead_letter"] = {"type": "file", "path": str(tmp_path / "dead.jsonl")}
    port = free_port()
    config["http"] = {"enabled": True, "bind": f"127.0.0.1:{port}"}
    daemon = Daemon(config, tmp_path, env=env).start()
    wait_for_points(influx_client, influx_bucket, 100 * 9 * H, daemon)

    buckets = influx_client.buckets_api()
    bucket = buckets.find_bucket_by_name(influx_bucket)
    buckets.delete_bucket(bucket)
    produce(services, ticks, readings, second)  # arrives while the sink has no bucket
    daemon.wait_for_log("404", timeout=60)
    time.sleep(3)
    assert daemon.running()
    with pytest.raises(urllib.error.HTTPError) as not_ready:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10)
    assert not_ready.value.code == 503
    body = json.loads(not_ready.value.read())
    assert body["checks"]["sinks"] is False
    assert "no such bucket" in body["sink_problem"]
    buckets.create_bucket(bucket_name=influx_bucket, org=services.influx_org)

    # What was written before the delete went with the bucket; everything issued after
    # it waited for the new bucket and arrives, exact.
    expected = expected_forecasts(start, steps)
    later = {k: v for k, v in expected.items() if k[2] - k[1] * S >= start + 10 * S}

    def written() -> dict[ForecastKey, float]:
        return {k: v for k, v, _ in forecast_points(influx_client, influx_bucket)}

    wait_until(lambda: written().keys() >= later.keys(), 120, "the later forecasts", daemon)
    got = written()
    assert all(abs(got[k] - v) < 1e-9 for k, v in later.items())
    assert daemon.stop() == 0
    dead = tmp_path / "dead.jsonl"
    assert not dead.exists() or dead.read_text() == ""
    assert "sink_rejected" not in daemon.log()
