"""Secrets against the real services: a token that may only write one bucket is all the
daemon needs from InfluxDB; every secret can come from a file, as Docker and Kubernetes
mount them; and no secret, right or wrong, ever shows in what the daemon prints at DEBUG
through a failing and a working connection to each service, in `config show`,
`/metrics`, the dead letter or the checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from influxdb_client import InfluxDBClient, Permission, PermissionResource
from kafka import KafkaProducer

from tests.integration.conftest import SecuredKafka, SecuredMqtt, Services
from tests.integration.daemon import REPO, Daemon, free_port, wait_until
from tests.integration.test_daemon import (
    base_config,
    events,
    expected_forecasts,
    kafka_sources,
    produce,
    t0,
    wait_for_points,
)


def write_only_token(client: InfluxDBClient, org_name: str, bucket_name: str) -> tuple[str, str]:
    """A new token that may write this one bucket and nothing else: (its id, the token)."""
    org = client.organizations_api().find_organizations(org=org_name)[0]
    bucket = client.buckets_api().find_bucket_by_name(bucket_name)
    write = PermissionResource(type="buckets", id=bucket.id, org_id=org.id)
    made = client.authorizations_api().create_authorization(
        org_id=org.id, permissions=[Permission(action="write", resource=write)]
    )
    return str(made.id), str(made.token)


def config_show(config_path: Path, env: dict[str, str]) -> str:
    shown = subprocess.run(
        [sys.executable, "-m", "streamer", "config", "show", str(config_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return shown.stdout + shown.stderr


def test_a_write_only_token_is_enough_and_no_secret_ever_shows_at_debug(
    services: Services,
    secured_kafka: SecuredKafka,
    secured_mqtt: SecuredMqtt,
    make_topic: Callable[[int], str],
    influx_client: InfluxDBClient,
    influx_bucket: str,
    tmp_path: Path,
) -> None:
    token_id, token = write_only_token(influx_client, services.influx_org, influx_bucket)
    # Every secret from a file, as Docker and Kubernetes mount them: the right ones and
    # a wrong one of each.
    right = {"influx": token, "kafka": secured_kafka.password, "mqtt": secured_mqtt.password}
    wrong = {name: f"wrong-{name}-{uuid.uuid4().hex}" for name in right}
    secrets, out = tmp_path / "secrets", tmp_path / "out"
    secrets.mkdir()
    out.mkdir()
    for name in right:
        (secrets / name).write_text(right[name] + "\n")
        (secrets / f"wrong-{name}").write_text(wrong[name] + "\n")
    ticks, readings, start, steps = make_topic(2), make_topic(2), t0(), 8
    produce(services, ticks, readings, events(start, range(steps + 1)))
    producer = KafkaProducer(bootstrap_servers=services.kafka_bootstrap)
    producer.send(ticks, b"\xff not json")  # for the dead letter
    producer.flush()
    producer.close()

    def config(name: str, wrong_one: str | None = None) -> dict[str, Any]:
        """Over SASL_SSL to Kafka (SCRAM-SHA-512 and PLAIN), TLS and a password to
        MQTT, a token to InfluxDB; `wrong_one` of them from its wrong file."""

        def file(service: str) -> str:
            return str(secrets / (f"wrong-{service}" if service == wrong_one else service))

        made = base_config(services, influx_bucket, out)
        kafka_login = {
            "bootstrap_servers": [secured_kafka.sasl_ssl],
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_username": secured_kafka.user,
            "sasl_password_file": file("kafka"),
            "ssl_cafile": secured_kafka.ca_file,
        }
        ticks_source, readings_source = kafka_sources(services, ticks, readings)
        mqtt_login = {
            "type": "mqtt",
            "name": "plant",
            "port": secured_mqtt.tls_port,
            "topics": [f"secure/allowed/{uuid.uuid4().hex[:8]}"],
            "username": secured_mqtt.user,
            "password_file": file("mqtt"),
            "tls": True,
            "ca_file": secured_mqtt.ca_file,
        }
        made["sources"] = [
            ticks_source | kafka_login,
            readings_source | kafka_login | {"sasl_mechanism": "PLAIN"},
            mqtt_login,
        ]
        sink = made["sinks"][0]
        del sink["token"]
        sink["token_file"] = file("influx")
        made["logging"] = {"level": "DEBUG"}
        made["http"] = {"enabled": True, "bind": f"127.0.0.1:{free_port()}"}
        made["pipeline"]["dead_letter"] = {"type": "file", "path": str(out / "dead.jsonl")}
        made["checkpoint"]["path"] = str(out / f"{name}.db")
        return made

    refusals = {
        "kafka": "it refused the login",
        "mqtt": "it refused the connection: Not authorized",
        "influx": "the token is not valid",
    }
    for service, refusal in refusals.items():
        refused = Daemon(config(service, wrong_one=service), out, name=f"wrong-{service}")
        refused.start()
        assert refused.process is not None
        assert refused.process.wait(120) == 1
        assert refusal in refused.log()

    working = config("working")
    daemon = Daemon(working, out, name="working").start()
    expected = expected_forecasts(start, steps)
    try:
        wait_for_points(influx_client, influx_bucket, len(expected), daemon)
        wait_until(lambda: (out / "dead.jsonl").exists(), 30, "the dead letter", daemon)
        bind = working["http"]["bind"]
        with urllib.request.urlopen(f"http://{bind}/metrics", timeout=10) as answer:
            metrics = answer.read().decode()
    finally:
        assert daemon.stop() == 0
    shown = config_show(daemon.config_path, {"PATH": "/usr/bin:/bin"})
    influx_client.authorizations_api().delete_authorization(token_id)

    assert "streamer_events_in_total" in metrics
    assert json.loads((out / "dead.jsonl").read_text().splitlines()[0])
    assert (out / "working.db").stat().st_size > 0
    # At DEBUG the client libraries say all: kafka-python shows the bytes of a PLAIN
    # login, which hold the password.
    assert "SaslAuthenticateRequest" in daemon.log()
    assert "\\x00***" in daemon.log()
    assert shown.count("'**********'") == 4  # two Kafka sources, MQTT, InfluxDB
    everything = {"metrics": metrics, "config show": shown}
    everything |= {str(p): p.read_bytes().decode("latin-1") for p in out.rglob("*") if p.is_file()}
    assert len(everything) >= 10  # four logs and configs, the dead letter, the checkpoint
    for secret in [*right.values(), *wrong.values()]:
        leaked = [where for where, text in everything.items() if secret in text]
        assert not leaked, f"a secret shows in {leaked}"
