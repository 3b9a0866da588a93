"""MQTT secured_mqtt, against the real Mosquitto of scripts/services.sh: TLS with the broker's
certificate checked against a CA file, a password_file and an acl_file; TLS that
requires a client certificate (signed here, at test time); and the dynamic security
plugin, which refuses a subscription its ACL does not allow. Each refusal fails the
start at once, saying which it was."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from connectors.mqtt_source import MqttSource, MqttTls
from streamer.core.errors import SourceError
from tests.integration.conftest import SecuredMqtt
from tests.integration.daemon import Daemon


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def client_certificate(where: Path, cn: str, ca_file: str, ca_key: str) -> tuple[str, str]:
    """A client key and a certificate for `cn` signed by the CA: (cert_file, key_file)."""
    key, csr, cert = where / f"{cn}.key", where / f"{cn}.csr", where / f"{cn}.crt"
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}", "-keyout", str(key),
            "-out", str(csr))  # fmt: skip
    openssl("x509", "-req", "-in", str(csr), "-CA", ca_file, "-CAkey", ca_key, "-CAcreateserial",
            "-CAserial", str(where / "ca.srl"), "-days", "2", "-out", str(cert))  # fmt: skip
    return str(cert), str(key)


def other_ca(where: Path) -> str:
    """A CA that signed nothing the broker holds."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=other",
            "-keyout", str(where / "other.key"), "-out", str(where / "other.crt"))  # fmt: skip
    return str(where / "other.crt")


def source(port: int, topics: list[str], **kwargs: object) -> MqttSource:
    return MqttSource(
        "secured",
        host="127.0.0.1",
        port=port,
        topics=topics,
        client_id=f"secured-{uuid.uuid4().hex[:8]}",
        connect_timeout=10,
        **kwargs,  # type: ignore[arg-type]
    )


def publish(secured_mqtt: SecuredMqtt, topic: str, payload: dict[str, float]) -> None:
    """Publish over TLS as the producer user, acknowledged (QoS 1)."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.username_pw_set(secured_mqtt.producer, secured_mqtt.producer_password)
    client.tls_set(ca_certs=secured_mqtt.ca_file)
    client.connect("127.0.0.1", secured_mqtt.tls_port)
    client.loop_start()
    client.publish(topic, json.dumps(payload), qos=1).wait_for_publish(timeout=10)
    client.disconnect()
    client.loop_stop()


def read(reader: MqttSource, n: int) -> list[bytes]:
    got: list[bytes] = []
    deadline = time.monotonic() + 20
    while len(got) < n and time.monotonic() < deadline:
        got += [r.payload for r in reader.poll(100, 0.5)]
    return got


def test_tls_with_a_password_reads_what_is_published(secured_mqtt: SecuredMqtt) -> None:
    topic = f"secure/allowed/{uuid.uuid4().hex[:8]}"
    reader = source(
        secured_mqtt.tls_port,
        [topic],
        username=secured_mqtt.user,
        password=secured_mqtt.password,
        tls=MqttTls(ca_file=secured_mqtt.ca_file),
    )
    try:
        publish(secured_mqtt, topic, {"value": 1.5})
        assert [json.loads(p) for p in read(reader, 1)] == [{"value": 1.5}]
    finally:
        reader.close()


def test_a_client_certificate_opens_the_listener_that_requires_one(
    secured_mqtt: SecuredMqtt, tmp_path: Path
) -> None:
    cert, key = client_certificate(
        tmp_path, secured_mqtt.cert_user, secured_mqtt.ca_file, secured_mqtt.ca_key
    )
    topic = f"secure/allowed/{uuid.uuid4().hex[:8]}"
    tls = MqttTls(ca_file=secured_mqtt.ca_file, cert_file=cert, key_file=key)
    reader = source(secured_mqtt.mtls_port, [topic], tls=tls)
    try:
        publish(secured_mqtt, topic, {"value": 2.5})
        assert [json.loads(p) for p in read(reader, 1)] == [{"value": 2.5}]
    finally:
        reader.close()
    with pytest.raises(SourceError, match="does the listener require a client certificate"):
        source(secured_mqtt.mtls_port, [topic], tls=MqttTls(ca_file=secured_mqtt.ca_file))


@pytest.mark.parametrize("fault", ["password", "untrusted", "subscription"])
def test_a_refusal_fails_the_start_at_once_saying_which(
    secured_mqtt: SecuredMqtt, tmp_path: Path, fault: str
) -> None:
    kwargs: dict[str, object] = {"username": secured_mqtt.user, "password": secured_mqtt.password}
    port, topics = secured_mqtt.tls_port, ["secure/allowed/#"]
    if fault == "password":
        kwargs |= {"password": "not-the-password", "tls": MqttTls(ca_file=secured_mqtt.ca_file)}
        expected = "refused the connection: Not authorized (check username and password)"
    elif fault == "untrusted":
        kwargs |= {"tls": MqttTls(ca_file=other_ca(tmp_path))}
        expected = "its TLS certificate is not trusted (self-signed certificate in certificate"
    else:
        port, topics = secured_mqtt.dynsec_port, ["secure/allowed/#", "secure/denied/#"]
        expected = "refused the subscription: {'secure/denied/#': 'Not authorized'}"
    started = time.monotonic()
    with pytest.raises(SourceError) as refused:
        source(port, topics, **kwargs)
    assert time.monotonic() - started < 5  # the broker's answer, not the 10 s timeout
    assert f"source 'secured': MQTT broker 127.0.0.1:{port}: " in str(refused.value)
    assert expected in str(refused.value)
    assert secured_mqtt.password not in str(refused.value)


def test_the_daemon_exits_1_naming_the_source_when_the_broker_refuses_it(
    secured_mqtt: SecuredMqtt, tmp_path: Path
) -> None:
    (tmp_path / "password").write_text("not-the-password\n")
    config = {
        "sources": [
            {
                "type": "mqtt",
                "name": "plant",
                "port": secured_mqtt.tls_port,
                "topics": ["secure/allowed/#"],
                "username": secured_mqtt.user,
                "password_file": str(tmp_path / "password"),
                "tls": True,
                "ca_file": secured_mqtt.ca_file,
            }
        ],
        "sinks": [{"type": "file", "path": str(tmp_path / "out.lp")}],
        "checkpoint": {"path": str(tmp_path / "checkpoint.db")},
        "http": {"enabled": False},
    }
    daemon = Daemon(config, tmp_path).start()
    assert daemon.process is not None
    assert daemon.process.wait(60) == 1
    log = daemon.log()
    assert f"source 'plant': MQTT broker 127.0.0.1:{secured_mqtt.tls_port}: it refused" in log
    assert "not-the-password" not in log
