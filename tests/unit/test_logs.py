"""What the daemon's logs show: never the config's secrets, whatever a library or an
exception puts in a message, in text or JSON."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from streamer.config.file import parse_config
from streamer.config.secrets import secret_values
from streamer.service import logs

CONFIG = """
sources:
  - type: kafka
    bootstrap_servers: [k:9093]
    topics: [t]
    security_protocol: SASL_SSL
    sasl_mechanism: SCRAM-SHA-512
    sasl_username: u
    sasl_password: kafka-s3cret
  - type: mqtt
    topics: [t/#]
    username: u
    password: mqtt-s3cret
sinks:
  - type: influxdb
    url: http://127.0.0.1:8086
    org: o
    bucket: b
    token: influx-s3cret
"""


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("format", ["text", "json"])
@pytest.mark.usefixtures("restore_logging")
def test_no_secret_of_the_config_reaches_the_log(
    format: str, capsys: pytest.CaptureFixture[str]
) -> None:
    secrets = secret_values(parse_config(CONFIG, environ={}))
    assert secrets == {"kafka-s3cret", "mqtt-s3cret", "influx-s3cret"}
    logs.configure("DEBUG", format, secrets)
    library = logging.getLogger("some.library")
    library.debug("configuration: %s", {"sasl_plain_password": "kafka-s3cret"})
    try:
        raise ValueError("token influx-s3cret refused")
    except ValueError:
        library.exception("connecting with mqtt-s3cret failed")
    shown = capsys.readouterr().err
    assert "s3cret" not in shown
    assert shown.count("***") == 4  # an argument, a message, the exception and its line
    assert "configuration: {'sasl_plain_password': '***'}" in shown
    assert "ValueError: token *** refused" in shown
    if format == "json":
        entries = [json.loads(line) for line in shown.splitlines()]
        assert entries[1]["message"] == "connecting with *** failed"


@pytest.mark.usefixtures("restore_logging")
def test_a_short_secret_is_masked_only_where_it_stands_alone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("INFO", "text", {"t"})
    logging.getLogger("x").warning("bucket 'b' at http://127.0.0.1: token t refused")
    assert "bucket 'b' at http://127.0.0.1: token *** refused" in capsys.readouterr().err


@pytest.mark.usefixtures("restore_logging")
def test_a_topic_the_broker_will_create_is_not_reported_as_an_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("INFO")
    logging.getLogger("kafka.cluster").error("Topic %s not found in cluster metadata", "forecasts")
    err = capsys.readouterr().err
    assert "ERROR" not in err
    assert "INFO    kafka.cluster: Kafka topic forecasts does not exist yet" in err
