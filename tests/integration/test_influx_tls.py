"""InfluxDB over HTTPS, against the real server of scripts/services.sh that speaks only
HTTPS with a certificate of the test CA: the sink writes with `ca_file`; without it the
start fails naming the cause; `verify_ssl: false` writes too, with a warning."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from influxdb_client import InfluxDBClient

from connectors.influx_sink import InfluxSink
from streamer.config import schema_edges as edges
from streamer.config.edges import SINKS
from streamer.core.errors import SinkUnusableError
from tests.contracts.sink_contract import sample_output
from tests.integration.conftest import Services, service_facts
from tests.integration.daemon import Daemon


@pytest.fixture(scope="module")
def https(services: Services) -> tuple[str, str]:
    """The HTTPS server's URL and the CA file that signed its certificate."""
    facts = service_facts("influxdb", "INFLUXDB_TLS_URL", "INFLUXDB_TLS_CA_FILE")
    return facts["INFLUXDB_TLS_URL"], facts["INFLUXDB_TLS_CA_FILE"]


@pytest.fixture
def bucket(services: Services, https: tuple[str, str]) -> Iterator[str]:
    url, ca_file = https
    with InfluxDBClient(
        url, services.influx_token, org=services.influx_org, ssl_ca_cert=ca_file
    ) as client:
        made = client.buckets_api().create_bucket(bucket_name=f"tls-{uuid.uuid4().hex[:8]}")
        yield made.name
        client.buckets_api().delete_bucket(made)


def sink(services: Services, url: str, bucket: str, **tls: object) -> InfluxSink:
    section = edges.InfluxSink.model_validate(
        {"type": "influxdb", "url": url, "org": services.influx_org, "bucket": bucket,
         "token": services.influx_token, **tls}
    )  # fmt: skip
    made = SINKS.builder(section, "sinks[0].type")(section)
    assert isinstance(made, InfluxSink)
    return made


def forecasts_in(services: Services, https: tuple[str, str], bucket: str) -> int:
    url, ca_file = https
    with InfluxDBClient(
        url, services.influx_token, org=services.influx_org, ssl_ca_cert=ca_file
    ) as client:
        tables = client.query_api().query(
            f'from(bucket: "{bucket}") |> range(start: 0) '
            '|> filter(fn: (r) => r._measurement == "forecast" and r._field == "yhat")'
        )
    return sum(len(t.records) for t in tables)


def test_the_sink_writes_over_https_checking_the_server_against_its_ca(
    services: Services, https: tuple[str, str], bucket: str
) -> None:
    url, ca_file = https
    writer = sink(services, url, bucket, ca_file=ca_file)
    writer.check()
    writer.write(sample_output(["s1", "s2"]))
    writer.close()
    assert forecasts_in(services, https, bucket) == 6  # 2 series x 3 horizons


def test_an_untrusted_server_certificate_fails_the_start_naming_it(
    services: Services, https: tuple[str, str], bucket: str, tmp_path: Path
) -> None:
    url, _ = https
    with pytest.raises(
        SinkUnusableError, match="the server's TLS certificate is not trusted; set ca_file"
    ):
        sink(services, url, bucket).check()
    config = {
        "sources": [{"type": "kafka", "kind": "sensor", "topics": ["t"],
                     "bootstrap_servers": [services.kafka_bootstrap]}],
        "sinks": [{"type": "influxdb", "url": url, "org": services.influx_org, "bucket": bucket,
                   "token": services.influx_token}],
        "checkpoint": {"path": str(tmp_path / "checkpoint.db")},
        "http": {"enabled": False},
    }  # fmt: skip
    daemon = Daemon(config, tmp_path).start()
    assert daemon.process is not None
    assert daemon.process.wait(60) == 1
    assert f"InfluxDB sink {url}" in daemon.log()
    assert "TLS certificate is not trusted" in daemon.log()


def test_verify_ssl_off_writes_and_warns_once(
    services: Services, https: tuple[str, str], bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    url, _ = https
    with caplog.at_level(logging.WARNING, logger="connectors.influx_sink"):
        writer = sink(services, url, bucket, verify_ssl=False)
        writer.check()
        writer.write(sample_output(["s1"]))
        writer.close()
    assert forecasts_in(services, https, bucket) == 3
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1
    assert "verify_ssl is off: the server's certificate is not checked" in warned[0]
