"""One fault scenario: a paced stream through the real daemon while a fault is injected.

Price ticks for `SERIES` symbols, `PER_STEP` ticks per symbol per 1 s step, are produced
to a Kafka topic at about real time (one step of event time per `PACE` seconds) while
the daemon (last_value model, mean of each step) writes to its own InfluxDB bucket. A
fault is injected part-way (a service stopped, killed, restarted); then the bucket is
read whole and compared, point by point, with the bucket of the same stream run
without a fault. While the fault lasts, the daemon's resident memory is sampled.
"""

from __future__ import annotations

import gc
import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from influxdb_client import InfluxDBClient
from kafka import KafkaProducer
from kafka.errors import KafkaError

from tests.integration.conftest import Services
from tests.integration.daemon import REPO, Daemon, epoch_ns, free_port, wait_until

S = 1_000_000_000
SERIES = 50
PER_STEP = 10
STEPS = 90
H = 3
PACE = 1.0  # seconds of wall time per step of event time
MEASUREMENTS = ("observed", "forecast", "forecast_error")

PointKey = tuple[str, tuple[tuple[str, str], ...], int, str]  # measurement, tags, time, field


def start_time() -> int:
    """A whole second two hours ago: past, so no event is ahead of max_future."""
    return (int(time.time()) - 7200) * S


def symbols() -> list[str]:
    return [f"SYM{k:02d}" for k in range(SERIES)]


def price(series: str, step: int, j: int) -> float:
    return round(50 + (sum(map(ord, series)) % 40) + (step % 17) * 0.75 + j * 0.125, 4)


def ticks(t_start: int, step: int, j: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """(symbol, payload) of the j-th tick of every symbol in one step."""
    ts_ms = (t_start + step * S + j * (S // PER_STEP) + S // (2 * PER_STEP)) // 1_000_000
    for sym in symbols():
        yield sym, {"symbol": sym, "price": price(sym, step, j), "ts": ts_ms}


def config(services: Services, topic: str, bucket: str, workdir: Path) -> dict[str, Any]:
    """The daemon under test: idle steps close after 5 s, so an outage longer than that
    shows whether time spent waiting is wrongly taken for a quiet stream; batches are
    smaller than a step's events, so the first batch after an outage does not reach
    every series (those it misses would be closed as idle)."""
    return {
        "instance": f"fault-{uuid.uuid4().hex[:8]}",
        "window": {"step": "1s", "aggregation": "mean", "max_gap": 2, "idle_close_after": "5s"},
        "model": {"type": "last_value", "horizon": H},
        "pipeline": {
            "max_wait": "100ms",
            "max_batch": 40,
            "dead_letter": {"type": "file", "path": str(workdir / "dead.jsonl")},
        },
        "sources": [
            {
                "type": "kafka",
                "name": "ticks",
                "kind": "price",
                "bootstrap_servers": [services.kafka_bootstrap],
                "topics": [topic],
            }
        ],
        "sinks": [
            {
                "type": "influxdb",
                "url": services.influx_url,
                "org": services.influx_org,
                "bucket": bucket,
                "token": "${TEST_INFLUX_TOKEN}",
                "max_retries": 2,
            }
        ],
        "checkpoint": {"path": str(workdir / "checkpoint.db"), "every": "1s"},
        "http": {"enabled": True, "bind": f"127.0.0.1:{free_port()}", "stall_after": "20s"},
    }


def probe(daemon: Daemon, path: str) -> tuple[int, dict[str, Any]]:
    """GET the daemon's /healthz or /readyz: (status, JSON body)."""
    bind = yaml.safe_load(daemon.config_path.read_text())["http"]["bind"]
    try:
        with urllib.request.urlopen(f"http://{bind}{path}", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


class PacedProducer(threading.Thread):
    """Produces the stream at PACE seconds a step; while Kafka is down it keeps trying,
    so what it could not send goes out, in order, once the broker is back."""

    def __init__(self, services: Services, topic: str, t_start: int, steps: int = STEPS) -> None:
        super().__init__(name="paced-producer", daemon=True)
        self.services, self.topic, self.t_start, self.steps = services, topic, t_start, steps
        self.sent = 0
        self.step = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            producer = KafkaProducer(
                bootstrap_servers=self.services.kafka_bootstrap,
                linger_ms=20,
                acks="all",
                retries=1_000_000,
                max_block_ms=300_000,
                delivery_timeout_ms=600_000,
                request_timeout_ms=10_000,
                reconnect_backoff_max_ms=1_000,
                max_in_flight_requests_per_connection=1,  # in order, even across retries
            )
            began = time.monotonic()
            for step in range(self.steps + 1):  # the last step only closes the one before
                self.step = step
                # Spread over the step, as ticks come: a fault always finds a step half full.
                for j in range(PER_STEP):
                    for sym, payload in ticks(self.t_start, step, j):
                        value = json.dumps(payload).encode()
                        producer.send(self.topic, key=sym.encode(), value=value)
                        self.sent += 1
                    lag = began + (step + (j + 1) / PER_STEP) * PACE - time.monotonic()
                    if lag > 0:
                        time.sleep(lag)
            producer.flush(timeout=600)
            producer.close()
        except (KafkaError, OSError) as exc:  # surfaced by the test
            self.error = exc


class MemorySampler(threading.Thread):
    """The peak resident memory of a process, sampled every 0.2 s while `active`."""

    def __init__(self, pid: int) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.pid = pid
        self.active = threading.Event()
        self.done = threading.Event()
        self.peak_kib = 0

    def run(self) -> None:
        while not self.done.wait(0.2):
            if not self.active.is_set():
                continue
            try:  # `pid` may change: a restarted daemon
                for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        self.peak_kib = max(self.peak_kib, int(line.split()[1]))
            except OSError:
                continue  # between a crash and the restart


def services_cmd(verb: str, *names: str) -> None:
    """scripts/services.sh VERB NAMES: the project's own way to stop and start them."""
    subprocess.run(
        ["scripts/services.sh", verb, *names],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=180,
    )


def read_bucket(client: InfluxDBClient, bucket: str) -> dict[PointKey, object]:
    """Every field of every data point (observed, forecasts, errors) in the bucket."""
    names = " or ".join(f'r._measurement == "{m}"' for m in MEASUREMENTS)
    tables = client.query_api().query(
        f'from(bucket: "{bucket}") |> range(start: 0) |> filter(fn: (r) => {names})'
    )
    skip = {"result", "table", "_start", "_stop", "_time", "_value", "_field", "_measurement"}
    points: dict[PointKey, object] = {}
    for table in tables:
        for r in table.records:
            tags = tuple(sorted((k, str(v)) for k, v in r.values.items() if k not in skip))
            key = (r.get_measurement(), tags, epoch_ns(r.get_time()), r.get_field())
            points[key] = r.get_value()
    return points


def forecast_count(client: InfluxDBClient, bucket: str) -> int:
    tables = client.query_api().query(
        f'from(bucket: "{bucket}") |> range(start: 0) '
        '|> filter(fn: (r) => r._measurement == "forecast" and r._field == "yhat") '
        "|> group() |> count()"
    )
    return sum(int(r.get_value()) for t in tables for r in t.records)


def expected_forecasts(steps: int = STEPS) -> int:
    """Forecast points of a complete run: H per series per step (the last step closes
    when the stream goes idle)."""
    return SERIES * (steps + 1) * H


OUTCOMES: list[Outcome] = []  # every scenario's, for the table at the end of the run


def wait_for_output(client: InfluxDBClient, bucket: str, daemon: Daemon) -> None:
    """Until every forecast is in the bucket, or none has come for 60 s (then the
    comparison says what is missing)."""
    seen, since = -1, time.monotonic()
    while (count := forecast_count(client, bucket)) < expected_forecasts():
        if count != seen:
            seen, since = count, time.monotonic()
        elif time.monotonic() - since > 60:
            return
        assert daemon.running(), f"the daemon exited:\n{daemon.log()[-3000:]}"
        time.sleep(1)


@dataclass
class Outcome:
    """A faulted run compared with the fault-free one, point by point."""

    scenario: str
    expected: int
    lost: int
    extra: int
    differing: int
    dead_lettered: int
    memory_peak_mib: float
    examples: list[str] = field(default_factory=list)

    def row(self) -> str:
        return (
            f"| {self.scenario} | {self.expected} | {self.lost} | {self.extra} | "
            f"{self.differing} | {self.dead_lettered} | {self.memory_peak_mib:.0f} |"
        )


def assert_same_as_reference(
    scenario: str,
    reference: dict[PointKey, object],
    client: InfluxDBClient,
    bucket: str,
    daemon: Daemon,
    workdir: Path,
    sampler: MemorySampler,
) -> None:
    """Compare the bucket with the fault-free run, record the outcome for the table at
    the end of the run, and fail on any point lost, extra or different, or any event
    dead-lettered."""
    got = read_bucket(client, bucket)
    lost = reference.keys() - got.keys()
    extra = got.keys() - reference.keys()
    differing = [k for k in reference.keys() & got.keys() if reference[k] != got[k]]
    dead_letter = workdir / "dead.jsonl"
    dead = dead_letter.read_text().splitlines() if dead_letter.exists() else []
    examples = [f"lost {k}" for k in sorted(lost)[:3]] + [f"extra {k}" for k in sorted(extra)[:3]]
    examples += [f"{k}: {got[k]!r}, not {reference[k]!r}" for k in sorted(differing)[:3]]
    examples += [f"dead letter: {line[:300]}" for line in dead[:3]]
    outcome = Outcome(
        scenario,
        len(reference),
        len(lost),
        len(extra),
        len(differing),
        len(dead),
        sampler.peak_kib / 1024,
        examples,
    )
    OUTCOMES.append(outcome)
    found = (outcome.lost, outcome.extra, outcome.differing, outcome.dead_lettered)
    assert found == (0, 0, 0, 0), "\n".join(examples) + "\n" + daemon.log()[-3000:]


def run_stream(
    services: Services,
    topic: str,
    bucket: str,
    client: InfluxDBClient,
    workdir: Path,
    t_start: int,
    fault: Callable[[Daemon, MemorySampler], Daemon | None] | None = None,
    fault_at_step: int = 15,
    env: dict[str, str] | None = None,
) -> tuple[Daemon, MemorySampler]:
    """Run the daemon over the paced stream, call `fault` once the producer reaches
    `fault_at_step` (it may return the daemon that replaced the first), and stop the
    daemon when every forecast is in the bucket."""
    daemon = Daemon(config(services, topic, bucket, workdir), workdir, env=env).start()
    daemon.wait_for_log("started:", timeout=90)
    assert daemon.process is not None
    sampler = MemorySampler(daemon.process.pid)
    sampler.start()
    producer = PacedProducer(services, topic, t_start)
    producer.start()
    try:
        if fault is not None:
            wait_until(lambda: producer.step >= fault_at_step, 120, "the stream under way", daemon)
            daemon = fault(daemon, sampler) or daemon
        producer.join(timeout=STEPS * PACE + 400)
        assert producer.error is None, f"the test's producer failed: {producer.error}"
        assert not producer.is_alive(), "the test's producer did not finish"
        wait_for_output(client, bucket, daemon)
        assert daemon.stop(timeout=120) == 0, daemon.log()[-3000:]
    finally:
        sampler.done.set()
        gc.collect()  # the client's leaked sockets, while the test's warning filter holds
    return daemon, sampler
