"""Replicas of one group share a 6-partition topic while members die, join, leave and
stall past their session (a zombie that wakes up holding stale partitions); the
series' state moves with their partitions, so InfluxDB ends up holding what a single
replica writes for the same input, point by point.

The model is the LSTM, served from its first step with retraining off: its forecasts
depend on each series' hidden state, scale, intervals and pending forecasts, so a
partition that moved without its state would forecast differently from then on.
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from influxdb_client import InfluxDBClient
from kafka import KafkaProducer

from tests.integration.conftest import Services
from tests.integration.daemon import Daemon, free_port, wait_until
from tests.integration.faults.scenario import (
    OUTCOMES,
    MemorySampler,
    Outcome,
    PointKey,
    forecast_count,
    read_bucket,
    start_time,
)

PARTITIONS = 6
SERIES = 36
STEPS = 150
PACE = 0.4  # seconds of wall time per step of event time
H = 3
S = 1_000_000_000

pytestmark = pytest.mark.filterwarnings(
    "ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning"
)


def reading(sensor: str, step: int) -> float:
    """A level per sensor, a daily-like wave, and a jump half-way for some (drift)."""
    k = int(sensor[1:])
    jump = 8.0 if step > STEPS // 2 and k % 3 == 0 else 0.0
    return round(20 + k + 3 * math.sin(step / 7 + k) + jump + ((step * 31 + k * 17) % 11) / 10, 3)


class Producer(threading.Thread):
    """Produces the same readings, keyed by sensor, to each topic, one step per PACE s."""

    def __init__(self, services: Services, topics: list[str], t0: int) -> None:
        super().__init__(name="producer", daemon=True)
        self.services, self.topics, self.t0 = services, topics, t0
        self.step = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            producer = KafkaProducer(bootstrap_servers=self.services.kafka_bootstrap, acks="all")
            began = time.monotonic()
            for step in range(STEPS + 1):  # the last step only closes the one before
                self.step = step
                ts = (self.t0 + step * S + S // 2) // 1_000_000
                for k in range(SERIES):
                    sensor = f"s{k:02d}"
                    value = json.dumps({"sensor": sensor, "value": reading(sensor, step), "ts": ts})
                    for topic in self.topics:
                        producer.send(topic, key=sensor.encode(), value=value.encode())
                time.sleep(max(0.0, began + (step + 1) * PACE - time.monotonic()))
            producer.flush()
            producer.close()
        except Exception as exc:
            self.error = exc


def replica_config(
    services: Services, topic: str, group: str, bucket: str, instance: str, workdir: Path
) -> dict[str, Any]:
    return {
        "instance": instance,
        "window": {"step": "1s", "aggregation": "mean", "max_gap": 2, "idle_close_after": "1h"},
        "model": {
            "type": "lstm",
            "horizon": H,
            "hidden_size": 8,
            "lags": 0,
            "min_train_steps": 0,
            "serve_if": "trained",
        },
        "retrain": {"enabled": False},
        "intervals": {"window": 20},
        "pipeline": {
            "max_wait": "100ms",
            "max_batch": 50,
            "dead_letter": {"type": "file", "path": str(workdir / f"{instance}-dead.jsonl")},
        },
        "sources": [
            {
                "type": "kafka",
                "name": "readings",
                "kind": "sensor",
                "fields": {"series": "sensor", "value": "value"},
                "bootstrap_servers": [services.kafka_bootstrap],
                "topics": [topic],
                "group_id": group,
            }
        ],
        "group": {"enabled": True, "session_timeout": "6s"},
        "sinks": [
            {
                "type": "influxdb",
                "url": services.influx_url,
                "org": services.influx_org,
                "bucket": bucket,
                "token": "${TEST_INFLUX_TOKEN}",
            }
        ],
        "checkpoint": {"path": str(workdir / f"{instance}.db"), "every": "2s"},
        "http": {"enabled": True, "bind": f"127.0.0.1:{free_port()}"},
    }


def start(config: dict[str, Any], workdir: Path, env: dict[str, str]) -> Daemon:
    daemon = Daemon(config, workdir, config["instance"], env=env).start()
    daemon.wait_for_log("started:", timeout=90)
    return daemon


def settle(client: InfluxDBClient, bucket: str, expected: int, daemons: list[Daemon]) -> None:
    """Until the bucket holds `expected` forecast points, or none came for 60 s."""
    seen, since = -1, time.monotonic()
    while (count := forecast_count(client, bucket)) < expected:
        if count != seen:
            seen, since = count, time.monotonic()
        elif time.monotonic() - since > 60:
            return
        for d in daemons:
            assert d.running(), f"{d.config_path.stem} exited:\n{d.log()[-3000:]}"
        time.sleep(1)


def test_replicas_that_die_join_and_leave_write_what_one_replica_writes(
    services: Services,
    make_topic: Any,
    influx_client: InfluxDBClient,
    influx_bucket: str,
    tmp_path: Path,
) -> None:
    topic, solo_topic = make_topic(PARTITIONS), make_topic(PARTITIONS)
    run = uuid.uuid4().hex[:6]
    solo_bucket = influx_client.buckets_api().create_bucket(bucket_name=f"{influx_bucket}-solo")
    env = {"TEST_INFLUX_TOKEN": services.influx_token}

    def config(name: str, topic: str = topic, bucket: str = influx_bucket) -> dict[str, Any]:
        group = f"scale-{run}" if topic != solo_topic else f"solo-{run}"
        return replica_config(services, topic, group, bucket, f"{name}-{run}", tmp_path)

    solo = start(config("solo", solo_topic, solo_bucket.name), tmp_path, env)
    replicas = {name: start(config(name), tmp_path, env) for name in ("r1", "r2", "r3")}
    first = replicas["r1"].process
    assert first is not None
    sampler = MemorySampler(first.pid)  # a replica that lives through every rebalance
    sampler.active.set()
    sampler.start()
    producer = Producer(services, [topic, solo_topic], start_time())
    producer.start()
    try:

        def at(step: int) -> None:
            wait_until(lambda: producer.step >= step, 300, f"step {step}", solo)

        at(25)
        replicas["r2"].kill()  # SIGKILL mid-stream: its partitions move after 6 s
        at(55)
        replicas["r4"] = start(config("r4"), tmp_path, env)  # a fourth joins
        at(90)
        assert replicas["r3"].stop(timeout=60) == 0  # a graceful stop
        at(110)
        zombie = replicas["r4"].process
        assert zombie is not None
        zombie.send_signal(signal.SIGSTOP)  # stalls past its session: the group moves on
        time.sleep(14)
        zombie.send_signal(signal.SIGCONT)  # and it wakes up holding stale partitions
        producer.join(timeout=STEPS * PACE + 120)
        assert producer.error is None, producer.error
        live = [d for d in (*replicas.values(), solo) if d.running()]
        expected = SERIES * STEPS * H  # every closed step: the last one never closes
        settle(influx_client, solo_bucket.name, expected, [solo])
        settle(influx_client, influx_bucket, expected, live)
        for daemon in live:
            assert daemon.stop(timeout=60) == 0, daemon.log()[-3000:]

        reference = read_bucket(influx_client, solo_bucket.name)
        got = read_bucket(influx_client, influx_bucket)
        dead = [p for p in tmp_path.glob("*-dead.jsonl") if p.read_text().strip()]
        lost, extra, differing = compare_points(reference, got)
        OUTCOMES.append(
            Outcome(
                "3 replicas of 6 partitions: one killed, one added, one stopped, one stalled",
                len(reference),
                len(lost),
                len(extra),
                len(differing),
                sum(len(p.read_text().splitlines()) for p in dead),
                sampler.peak_kib / 1024,
            )
        )
        assert (len(lost), len(extra), len(differing)) == (0, 0, 0), (
            f"{len(lost)} lost (e.g. {lost[:3]}), {len(extra)} extra (e.g. {extra[:3]}), "
            f"{len(differing)} differ (e.g. {sorted(differing)[:3]}) of {len(reference)}"
        )
        forecasts = [k for k in reference if k[0] == "forecast" and k[3] == "yhat"]
        assert len(forecasts) == expected
        assert not dead, dead[0].read_text()[:2000]
        logs = "".join(d.log() for d in replicas.values())
        assert "restored partition" in logs
        woke = replicas["r4"].log()
        # It learnt it was out (its partitions lost, or its commit refused) and let go.
        assert "partitions lost" in woke or "dropping the state" in woke, woke[-3000:]
    finally:
        sampler.done.set()
        influx_client.buckets_api().delete_bucket(solo_bucket)


def compare_points(
    reference: dict[PointKey, object], got: dict[PointKey, object]
) -> tuple[list[PointKey], list[PointKey], list[str]]:
    """Points lost, extra, and differing: floats to 1e-6 relative (batched float32 maths
    may differ in the last bits with a batch's composition). A forecast error is the
    difference of a forecast and a reading (20 to 40 here): it moves by as much as its
    forecast may, about 3e-5, so errors are compared to 1e-5 absolute."""
    lost = sorted(reference.keys() - got.keys())
    extra = sorted(got.keys() - reference.keys())
    differing = []
    for key in reference.keys() & got.keys():
        a, b = reference[key], got[key]
        abs_tol = 1e-5 if key[0] == "forecast_error" else 1e-9
        same = (
            math.isclose(a, b, rel_tol=1e-6, abs_tol=abs_tol)
            if isinstance(a, float) and isinstance(b, float)
            else a == b
        )
        if not same:
            differing.append(f"{key}: {b!r}, not {a!r}")
    return lost, extra, differing


def test_one_replica_trains_all_serve_its_versions_and_another_takes_over_when_it_dies(
    services: Services,
    make_topic: Any,
    influx_client: InfluxDBClient,
    influx_bucket: str,
    tmp_path: Path,
) -> None:
    topic = make_topic(PARTITIONS)
    run = uuid.uuid4().hex[:6]
    env = {"TEST_INFLUX_TOKEN": services.influx_token}

    def config(name: str) -> dict[str, Any]:
        section = replica_config(
            services, topic, f"lineage-{run}", influx_bucket, f"{name}-{run}", tmp_path
        )
        section["retrain"] = {
            "schedule": "4s",
            "min_new_steps": 20,
            "window": 24,
            "burn_in": 8,
            "promote": "always",  # every retrain makes a version: the lineage is visible
            "max_duration": "20s",
        }
        return section

    replicas = {name: start(config(name), tmp_path, env) for name in ("r1", "r2", "r3")}
    producer = Producer(services, [topic], start_time())
    producer.start()

    def trainers() -> list[str]:
        return [n for n, d in replicas.items() if d.running() and trains(d.log())]

    try:
        wait_until(lambda: len(trainers()) == 1, 60, "a trainer elected", replicas["r1"])
        first = trainers()[0]
        wait_until(
            lambda: "published version 2 " in replicas[first].log(),
            120,
            "the trainer's second version",
            replicas[first],
        )
        followers = [n for n in replicas if n != first]
        for name in followers:  # every replica serves what the trainer published
            follower = replicas[name]
            wait_until(
                lambda: "serving version 2 of the group's model" in follower.log(),  # noqa: B023
                60,
                f"{name} serving version 2",
                follower,
            )
            assert "published version" not in follower.log()
        replicas[first].kill()  # the trainer dies: another takes training over
        died = time.monotonic()
        wait_until(lambda: len(trainers()) == 1, 60, "a new trainer", replicas[followers[0]])
        took_over = time.monotonic() - died
        second = trainers()[0]
        assert took_over < 6 + 10, f"training taken over after {took_over:.1f} s"
        wait_until(
            lambda: any(f"published version {v} " in replicas[second].log() for v in range(3, 50)),
            120,
            "a version published by the new trainer",
            replicas[second],
        )
        producer.join(timeout=STEPS * PACE + 120)
        for name in followers:
            assert replicas[name].stop(timeout=60) == 0, replicas[name].log()[-3000:]
        versions = forecast_versions(influx_client, influx_bucket)
        assert max(versions) >= 3, versions
    finally:
        for daemon in replicas.values():
            if daemon.running():
                daemon.kill()


def trains(log: str) -> bool:
    """Whether the replica's latest word on the matter is that it trains."""
    said = [line for line in log.splitlines() if "the group's model" in line and "trains" in line]
    return bool(said) and "no longer" not in said[-1]


def forecast_versions(client: InfluxDBClient, bucket: str) -> set[int]:
    tables = client.query_api().query(
        f'from(bucket: "{bucket}") |> range(start: 0) '
        '|> filter(fn: (r) => r._measurement == "forecast" and r._field == "version") '
        "|> group() |> distinct()"
    )
    return {int(r.get_value()) for t in tables for r in t.records}
