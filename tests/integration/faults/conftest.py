"""Fault scenarios against the real services: a fault-free run to compare with, and
the table of outcomes at the end of the test run."""

from __future__ import annotations

import gc
import uuid
from collections.abc import Iterator

import pytest
from _pytest.terminal import TerminalReporter
from influxdb_client import InfluxDBClient
from kafka.admin import KafkaAdminClient, NewTopic

from tests.integration.conftest import Services
from tests.integration.faults.scenario import (
    OUTCOMES,
    PointKey,
    read_bucket,
    run_stream,
    start_time,
)


@pytest.fixture(scope="session")
def stream_start() -> int:
    """The event time of the stream every scenario replays (the same for all of them)."""
    return start_time()


@pytest.fixture
def fault_topic(services: Services, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh 4-partition topic. No client is kept open across the test: one that
    lived through a broker outage would leave the sockets of its failed reconnections
    to be collected in some later test."""
    name = f"fault-{request.node.name[:40]}-{id(request)}".replace("[", "-").replace("]", "")
    admin = KafkaAdminClient(bootstrap_servers=services.kafka_bootstrap)
    admin.create_topics([NewTopic(name, 4, 1)])
    admin.close()
    yield name
    admin = KafkaAdminClient(bootstrap_servers=services.kafka_bootstrap)
    admin.delete_topics([name])
    admin.close()
    gc.collect()  # within this test's warning filter (see test_outages.py)


@pytest.fixture(scope="session")
def reference(
    services: Services, stream_start: int, tmp_path_factory: pytest.TempPathFactory
) -> dict[PointKey, object]:
    """What InfluxDB holds after the stream ran without a fault."""
    workdir = tmp_path_factory.mktemp("reference")
    admin = KafkaAdminClient(bootstrap_servers=services.kafka_bootstrap)
    # Unique names: a run stopped before its clean-up leaves its topic and bucket behind.
    topic = f"fault-reference-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, 4, 1)])
    with InfluxDBClient(
        url=services.influx_url, token=services.influx_token, org=services.influx_org
    ) as client:
        buckets = client.buckets_api()
        bucket = buckets.create_bucket(bucket_name=topic)
        try:
            env = {"TEST_INFLUX_TOKEN": services.influx_token}
            run_stream(services, topic, bucket.name, client, workdir, stream_start, env=env)
            points = read_bucket(client, bucket.name)
        finally:
            buckets.delete_bucket(bucket)
            admin.delete_topics([topic])
            admin.close()
    return points


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    if not OUTCOMES:
        return
    terminalreporter.section("fault scenarios")
    terminalreporter.write_line(
        "| scenario | points expected | lost | extra | differing | dead-lettered | "
        "memory peak during the fault (MiB) |"
    )
    terminalreporter.write_line("|---|---|---|---|---|---|---|")
    for outcome in OUTCOMES:
        terminalreporter.write_line(outcome.row())
