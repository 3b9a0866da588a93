"""Fixtures for the real Kafka, InfluxDB and Mosquitto started by `scripts/services.sh up`.

Connection facts come from the file that script writes. A service that is not there or
does not answer fails the test with the tail of its log: it is never skipped. Each test
gets its own Kafka topic, InfluxDB bucket and MQTT topic prefix, removed afterwards.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from influxdb_client import InfluxDBClient
from kafka.admin import KafkaAdminClient

CACHE = Path(
    os.environ.get("STREAMER_SERVICES_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "streamer-services"
)
RUN_DIR = Path(os.environ.get("STREAMER_SERVICES_RUN", CACHE / "run"))
SERVICES_ENV = RUN_DIR / "services.env"


@dataclass(frozen=True)
class Services:
    """Where the test services run (from services.env)."""

    kafka_bootstrap: str
    influx_url: str
    influx_org: str
    influx_token: str
    mqtt_host: str
    mqtt_port: int


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.integration)


def _log_tail(name: str, lines: int = 30) -> str:
    log = RUN_DIR / f"{name}.log"
    if not log.exists():
        return f"(no log at {log})"
    tail = log.read_text(errors="replace").splitlines()[-lines:]
    return f"{log}:\n" + "\n".join(f"    | {line}" for line in tail)


def _require_port(name: str, host: str, port: int) -> None:
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as exc:
        pytest.fail(
            f"{name} is not reachable at {host}:{port} ({exc}); start it with "
            f"`scripts/services.sh up`.\n{_log_tail(name)}",
            pytrace=False,
        )


def service_facts(service: str = "", *required: str) -> dict[str, str]:
    """The connection facts of services.env; fails naming `service` when one of
    `required` is not there (the service was started by an older script)."""
    facts = dict(
        line.split("=", 1) for line in SERVICES_ENV.read_text().splitlines() if "=" in line
    )
    missing = [key for key in required if not facts.get(key)]
    if missing:
        pytest.fail(f"{SERVICES_ENV} lacks {missing}: run `scripts/services.sh restart {service}`")
    return facts


@pytest.fixture(scope="session")
def services() -> Services:
    if not SERVICES_ENV.exists():
        pytest.fail(
            f"{SERVICES_ENV} does not exist: the test services are not up. "
            "Run `scripts/services.sh up` (scripts/test.sh does).",
            pytrace=False,
        )
    facts = service_facts()
    found = Services(
        kafka_bootstrap=facts.get("KAFKA_BOOTSTRAP", ""),
        influx_url=facts.get("INFLUXDB_URL", ""),
        influx_org=facts.get("INFLUXDB_ORG", ""),
        influx_token=facts.get("INFLUXDB_TOKEN", ""),
        mqtt_host=facts.get("MQTT_HOST", "127.0.0.1"),
        mqtt_port=int(facts.get("MQTT_PORT", "0") or 0),
    )
    kafka_host, kafka_port = (
        found.kafka_bootstrap.rsplit(":", 1) if found.kafka_bootstrap else ("", "0")
    )
    _require_port("kafka", kafka_host, int(kafka_port))
    influx = re.match(r"https?://([^:/]+):(\d+)", found.influx_url)
    _require_port(
        "influxdb", influx.group(1) if influx else "", int(influx.group(2)) if influx else 0
    )
    _require_port("mosquitto", found.mqtt_host, found.mqtt_port)
    return found


def _unique(request: pytest.FixtureRequest) -> str:
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40]
    return f"{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def make_topic(
    services: Services, request: pytest.FixtureRequest
) -> Iterator[Callable[[int], str]]:
    """Makes fresh topics (with n partitions), deleted after the test."""
    admin = KafkaAdminClient(bootstrap_servers=services.kafka_bootstrap)
    made: list[str] = []

    def make(partitions: int = 4) -> str:
        topic = f"test-{_unique(request)}"
        admin.create_topics(
            {topic: {"num_partitions": partitions, "replication_factor": 1}},
            wait_for_metadata=True,
        )
        made.append(topic)
        return topic

    try:
        yield make
        if made:
            admin.delete_topics(made)
    finally:
        admin.close()


@pytest.fixture
def kafka_topic(make_topic: Callable[[int], str]) -> str:
    """A fresh topic with 4 partitions, deleted after the test."""
    return make_topic(4)


@pytest.fixture
def influx_client(services: Services) -> Iterator[InfluxDBClient]:
    with InfluxDBClient(
        url=services.influx_url, token=services.influx_token, org=services.influx_org
    ) as client:
        yield client


@pytest.fixture
def influx_bucket(influx_client: InfluxDBClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh bucket, deleted after the test (by name: a test may re-create it)."""
    buckets = influx_client.buckets_api()
    bucket = buckets.create_bucket(bucket_name=f"test-{_unique(request)}")
    yield bucket.name
    current = buckets.find_bucket_by_name(bucket.name)
    if current is not None:
        buckets.delete_bucket(current)


@pytest.fixture
def mqtt_prefix(request: pytest.FixtureRequest) -> str:
    """A topic prefix no other test publishes under."""
    return f"streamer-test/{_unique(request)}"


@pytest.fixture(autouse=True)
def _no_daemon_left_running() -> Iterator[None]:
    """A test that fails part-way must not leave a daemon process behind."""
    from tests.integration.daemon import Daemon

    Daemon.started.clear()
    yield
    for daemon in Daemon.started:
        if daemon.running():
            daemon.kill()


@dataclass(frozen=True)
class SecuredMqtt:
    """Mosquitto's secured listeners (scripts/services/mosquitto.sh)."""

    tls_port: int
    mtls_port: int
    dynsec_port: int
    ca_file: str
    ca_key: str
    user: str
    password: str
    producer: str
    producer_password: str
    cert_user: str


@pytest.fixture(scope="module")
def secured_mqtt(services: Services) -> SecuredMqtt:
    facts = service_facts(
        "mosquitto",
        "MQTT_TLS_PORT", "MQTT_MTLS_PORT", "MQTT_DYNSEC_PORT", "MQTT_CA_FILE", "MQTT_PASSWORD",
    )  # fmt: skip
    return SecuredMqtt(
        int(facts["MQTT_TLS_PORT"]),
        int(facts["MQTT_MTLS_PORT"]),
        int(facts["MQTT_DYNSEC_PORT"]),
        facts["MQTT_CA_FILE"],
        facts["MQTT_CA_KEY"],
        facts["MQTT_USER"],
        facts["MQTT_PASSWORD"],
        facts["MQTT_PRODUCER"],
        facts["MQTT_PRODUCER_PASSWORD"],
        facts["MQTT_CERT_USER"],
    )


@dataclass(frozen=True)
class SecuredKafka:
    """Kafka's secured listeners (scripts/services/kafka.sh)."""

    sasl_ssl: str  # host:port of each listener
    ssl: str
    ca_file: str
    ca_key: str
    user: str
    password: str


@pytest.fixture(scope="module")
def secured_kafka(services: Services) -> SecuredKafka:
    facts = service_facts(
        "kafka", "KAFKA_SASL_SSL_PORT", "KAFKA_SSL_PORT", "KAFKA_CA_FILE", "KAFKA_SASL_PASSWORD"
    )
    return SecuredKafka(
        f"127.0.0.1:{facts['KAFKA_SASL_SSL_PORT']}",
        f"127.0.0.1:{facts['KAFKA_SSL_PORT']}",
        facts["KAFKA_CA_FILE"],
        facts["KAFKA_CA_KEY"],
        facts["KAFKA_SASL_USER"],
        facts["KAFKA_SASL_PASSWORD"],
    )
