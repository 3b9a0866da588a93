"""Kafka secured, against the real broker of scripts/services.sh: SASL_SSL with PLAIN,
SCRAM-SHA-256 and SCRAM-SHA-512, and SSL with a client certificate signed here, at test time. The
source, the sink and the dead letter, built from one config section's keys each, read
and write over each; a wrong password, an untrusted broker certificate or a missing
client certificate fails the start naming the source or sink and the cause."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connectors.kafka_sink import KafkaDeadLetter, KafkaSink, forecast_messages
from connectors.kafka_source import KafkaSource
from streamer.config import schema_edges as edges
from streamer.config.edges import kafka_settings
from streamer.core.errors import SinkUnusableError, SourceError
from streamer.core.records import Rejection
from tests.contracts.sink_contract import sample_output
from tests.integration.conftest import SecuredKafka
from tests.integration.daemon import Daemon
from tests.integration.test_mqtt_security import client_certificate, other_ca


def connection(secured_kafka: SecuredKafka, how: str, where: Path) -> dict[str, Any]:
    """The config keys of a connection over the listener `how` names."""
    if how == "mtls":
        cert, key = client_certificate(
            where, "streamer-kafka", secured_kafka.ca_file, secured_kafka.ca_key
        )
        return {
            "bootstrap_servers": [secured_kafka.ssl],
            "security_protocol": "SSL",
            "ssl_cafile": secured_kafka.ca_file,
            "ssl_certfile": cert,
            "ssl_keyfile": key,
        }
    return {
        "bootstrap_servers": [secured_kafka.sasl_ssl],
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": {
            "plain": "PLAIN",
            "scram": "SCRAM-SHA-512",
            "scram-sha-256": "SCRAM-SHA-256",
        }[how],
        "sasl_username": secured_kafka.user,
        "sasl_password": secured_kafka.password,
        "ssl_cafile": secured_kafka.ca_file,
    }


def read_all(source: KafkaSource, n: int) -> list[bytes]:
    got: list[bytes] = []
    deadline = time.monotonic() + 60
    while len(got) < n and time.monotonic() < deadline:
        got += [r.payload for r in source.poll(500, 0.5)]
    return got


@pytest.mark.parametrize("how", ["plain", "scram", "scram-sha-256", "mtls"])
def test_source_sink_and_dead_letter_work_over_each_secured_listener(
    secured_kafka: SecuredKafka, make_topic: Callable[[int], str], tmp_path: Path, how: str
) -> None:
    keys = connection(secured_kafka, how, tmp_path)
    topic, dead = make_topic(1), make_topic(1)
    sink_settings = kafka_settings(
        edges.KafkaSink.model_validate({"type": "kafka", "topic": topic, **keys})
    )
    sink = KafkaSink(topic, sink_settings)
    sink.check()
    output = sample_output(["s1", "s2"])
    sink.write(output)
    dead_section = edges.KafkaDeadLetter.model_validate({"type": "kafka", "topic": dead, **keys})
    dead_letter = KafkaDeadLetter(dead, kafka_settings(dead_section))
    dead_letter.check()
    dead_letter.write([Rejection("bad_json", "not JSON", b"\xff")])
    sink.close()
    dead_letter.close()

    source_section = edges.KafkaSource.model_validate(
        {"type": "kafka", "kind": "sensor", "topics": [topic, dead], **keys}
    )
    source = KafkaSource(
        "secured", topics=[topic, dead], group_id=f"g-{uuid.uuid4().hex[:8]}",
        settings=kafka_settings(source_section),
    )  # fmt: skip
    try:
        got = read_all(source, len(forecast_messages(output)) + 1)
    finally:
        source.close()
    assert b"\xff" in got
    assert sorted(json.loads(p)["series"] for p in got if p != b"\xff") == ["s1", "s2"]


@pytest.mark.parametrize("fault", ["password", "untrusted", "no certificate"])
def test_a_refused_connection_fails_the_start_naming_the_cause(
    secured_kafka: SecuredKafka, tmp_path: Path, fault: str
) -> None:
    if fault == "password":
        keys = connection(secured_kafka, "scram", tmp_path) | {"sasl_password": "not-the-password"}
        expected = "it refused the login: check sasl_username, sasl_password and sasl_mechanism"
    elif fault == "untrusted":
        keys = connection(secured_kafka, "plain", tmp_path) | {"ssl_cafile": other_ca(tmp_path)}
        expected = "its TLS certificate is not trusted"
    else:
        keys = connection(secured_kafka, "mtls", tmp_path)
        del keys["ssl_certfile"], keys["ssl_keyfile"]
        expected = "if the listener requires a client certificate, set ssl_certfile"
    section = edges.KafkaSource.model_validate(
        {"type": "kafka", "kind": "sensor", "topics": ["t"], **keys}
    )
    started = time.monotonic()
    with pytest.raises(SourceError) as refused:
        KafkaSource("secured", topics=["t"], group_id="g", settings=kafka_settings(section))
    assert f"source 'secured': Kafka at {keys['bootstrap_servers']}: " in str(refused.value)
    assert expected in str(refused.value)
    assert "not-the-password" not in str(refused.value)
    assert time.monotonic() - started < 60
    sink = KafkaSink(
        "t", kafka_settings(edges.KafkaSink.model_validate({"type": "kafka", "topic": "t", **keys}))
    )
    with pytest.raises(SinkUnusableError, match=expected.split(":")[0]):
        sink.check()
    sink.close()


def test_the_daemon_exits_1_naming_the_source_when_kafka_refuses_the_login(
    secured_kafka: SecuredKafka, tmp_path: Path
) -> None:
    (tmp_path / "password").write_text("not-the-password\n")
    keys = connection(secured_kafka, "scram", tmp_path)
    del keys["sasl_password"]
    config = {
        "sources": [
            {"type": "kafka", "name": "ticks", "kind": "price", "topics": ["t"], **keys,
             "sasl_password_file": str(tmp_path / "password")}
        ],
        "sinks": [{"type": "file", "path": str(tmp_path / "out.lp")}],
        "checkpoint": {"path": str(tmp_path / "checkpoint.db")},
        "http": {"enabled": False},
    }  # fmt: skip
    daemon = Daemon(config, tmp_path).start()
    assert daemon.process is not None
    assert daemon.process.wait(120) == 1
    log = daemon.log()
    assert f"source 'ticks': Kafka at ['{secured_kafka.sasl_ssl}']" in log
    assert "it refused the login" in log
    assert "not-the-password" not in log
