"""Secrets against the real InfluxDB: a token that may only write one bucket is all the
daemon needs, read from a file as Docker and Kubernetes mount it; and neither it nor a
wrong token ever shows in what the daemon prints at DEBUG, `config show`, `/metrics`,
the dead letter or the checkpoint."""

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

from tests.integration.conftest import Services
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


def test_a_write_only_token_from_a_file_is_enough_and_no_token_ever_shows(
    services: Services,
    make_topic: Callable[[int], str],
    influx_client: InfluxDBClient,
    influx_bucket: str,
    tmp_path: Path,
) -> None:
    token_id, token = write_only_token(influx_client, services.influx_org, influx_bucket)
    wrong = f"wrong-{uuid.uuid4().hex}"
    secrets, out = tmp_path / "secrets", tmp_path / "out"
    secrets.mkdir()
    out.mkdir()
    (secrets / "influx_token").write_text(token + "\n")
    (secrets / "wrong_token").write_text(wrong + "\n")
    ticks, readings, start, steps = make_topic(2), make_topic(2), t0(), 8
    produce(services, ticks, readings, events(start, range(steps + 1)))
    producer = KafkaProducer(bootstrap_servers=services.kafka_bootstrap)
    producer.send(ticks, b"\xff not json")  # for the dead letter
    producer.flush()
    producer.close()

    def config(name: str, token_file: str) -> dict[str, Any]:
        made = base_config(services, influx_bucket, out)
        made["sources"] = kafka_sources(services, ticks, readings)
        sink = made["sinks"][0]
        del sink["token"]
        sink["token_file"] = str(secrets / token_file)
        made["logging"] = {"level": "DEBUG"}
        made["http"] = {"enabled": True, "bind": f"127.0.0.1:{free_port()}"}
        made["pipeline"]["dead_letter"] = {"type": "file", "path": str(out / "dead.jsonl")}
        made["checkpoint"]["path"] = str(out / f"{name}.db")
        return made

    refused = Daemon(config("refused", "wrong_token"), out, name="refused").start()
    assert refused.process is not None
    assert refused.process.wait(60) == 1
    assert "the token is not valid" in refused.log()

    working = config("working", "influx_token")
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
    assert "token: '**********'" in shown
    everything = {"metrics": metrics, "config show": shown}
    everything |= {str(p): p.read_bytes().decode("latin-1") for p in out.rglob("*") if p.is_file()}
    assert len(everything) >= 6  # two logs and configs, the dead letter, the checkpoint, ...
    for secret in (token, wrong):
        leaked = [where for where, text in everything.items() if secret in text]
        assert not leaked, f"a token shows in {leaked}"
