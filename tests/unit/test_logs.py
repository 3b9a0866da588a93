"""What the daemon's logs show: never the config's secrets, whatever a library or an
exception puts in a message, in text or JSON; and which stream a line is about."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connectors.base import Output
from streamer.config.file import parse_config
from streamer.config.secrets import secret_values
from streamer.core.errors import SinkError
from streamer.core.threads import thread_name
from streamer.engine.sink_writer import SinkWriter
from streamer.service import logs
from tests.helpers import output

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


class _FlakySink:
    """Fails its first write, like a sink whose server is down for a moment; its writes
    run on a helper thread of their own, as the InfluxDB sink's do."""

    def __init__(self) -> None:
        self.heartbeat: Callable[[], None] = lambda: None
        self.failed = False
        self.written = threading.Event()

    def write(self, output: Output) -> None:
        def work() -> None:
            logging.getLogger("sink.helper").info("sending %d series", len(output.forecasts))

        helper = threading.Thread(target=work, name=thread_name("influx-write"))
        helper.start()
        helper.join()
        if not self.failed:
            self.failed = True
            raise SinkError("server down")
        self.written.set()

    def check(self) -> None:
        pass

    def flush(self) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def start_fresh(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.mark.usefixtures("restore_logging")
def test_a_streams_helper_threads_say_which_stream_they_work_for(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("INFO")
    sink = _FlakySink()
    writer = SinkWriter([sink], retry_wait=0.01, names=["store"], stream="ticks")
    writer.submit(output(["AAA", "BBB"], [[1.0], [2.0]]))
    assert sink.written.wait(10)
    writer.close()
    err = capsys.readouterr().err
    assert "streamer.engine.sink_writer: [ticks] store cannot write (server down)" in err
    assert err.count("sink.helper: [ticks] sending 2 series") == 2
