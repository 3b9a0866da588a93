"""A dependency goes away under load and comes back: nothing is lost, duplicated or
changed, compared point by point with the same stream run without the fault."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from influxdb_client import InfluxDBClient

from tests.integration.conftest import Services
from tests.integration.daemon import Daemon
from tests.integration.faults.scenario import (
    MemorySampler,
    PointKey,
    assert_same_as_reference,
    probe,
    run_stream,
    services_cmd,
)

PROBLEM = {"kafka": "source_problems", "influxdb": "sink_problem"}

# kafka-python leaves a socket unclosed for each connection it fails to make while a
# broker is down (a known fault of the client, not of ours); they are collected here.
pytestmark = pytest.mark.filterwarnings(
    "ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning"
)


def outage(
    verb: str, service: str, seconds: float
) -> Callable[[Daemon, MemorySampler], Daemon | None]:
    """Take the service away with `verb` (down: SIGTERM, kill: SIGKILL) for `seconds`,
    then start it again with its data; memory is sampled meanwhile. Through the outage
    the daemon is alive (/healthz 200: an orchestrator must not restart it) and, once
    it has noticed, not ready, saying why (/readyz 503)."""

    def inject(daemon: Daemon, sampler: MemorySampler) -> Daemon | None:
        sampler.active.set()
        services_cmd(verb, service)
        ends = time.monotonic() + seconds
        liveness: list[tuple[int, dict[str, Any]]] = []
        readiness: list[tuple[int, dict[str, Any]]] = []
        try:
            while time.monotonic() < ends:
                liveness.append(probe(daemon, "/healthz"))
                readiness.append(probe(daemon, "/readyz"))
                time.sleep(2)
        finally:
            services_cmd("up", service)  # whatever happened: the next test needs it
        stalled = [(status, body) for status, body in liveness if status != 200]
        assert not stalled, f"/healthz in a {service} outage: {stalled[:3]}"
        noticed = [body for status, body in readiness if status == 503 and PROBLEM[service] in body]
        assert noticed, f"/readyz never said why in a {service} outage: {readiness[-3:]}"
        assert all(status == 503 for status, _ in readiness[len(readiness) // 2 :]), readiness
        time.sleep(5)  # the daemon's reconnection is part of the outage
        sampler.active.clear()
        assert daemon.running(), f"the daemon died in the outage:\n{daemon.log()[-3000:]}"
        return None

    return inject


@pytest.mark.parametrize(
    ("verb", "service", "seconds"),
    [
        ("down", "kafka", 60),
        ("down", "influxdb", 60),
        ("kill", "influxdb", 20),
        ("kill", "kafka", 20),
    ],
    ids=["kafka-stopped-60s", "influxdb-stopped-60s", "influxdb-killed-20s", "kafka-killed-20s"],
)
def test_an_outage_under_load_loses_duplicates_and_changes_nothing(
    verb: str,
    service: str,
    seconds: float,
    services: Services,
    fault_topic: str,
    influx_client: InfluxDBClient,
    influx_bucket: str,
    reference: dict[PointKey, object],
    stream_start: int,
    tmp_path: Path,
) -> None:
    env = {"TEST_INFLUX_TOKEN": services.influx_token}
    daemon, sampler = run_stream(
        services,
        fault_topic,
        influx_bucket,
        influx_client,
        tmp_path,
        stream_start,
        fault=outage(verb, service, seconds),
        env=env,
    )
    assert_same_as_reference(
        f"{service} {'stopped' if verb == 'down' else 'killed'} {seconds:.0f} s under load",
        reference,
        influx_client,
        influx_bucket,
        daemon,
        tmp_path,
        sampler,
    )
