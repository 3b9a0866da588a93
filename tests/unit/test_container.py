"""The container files agree with each other and with config/: what can be checked
without a Docker engine.

docker-compose.yml is parsed and resolved by the real Docker Compose (`config` needs no
engine; scripts/compose.sh builds it where the plugin is missing), with the committed
.env.example as its .env. The Dockerfile is read instruction by instruction.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from streamer.config.file import load_config
from streamer.config.schema import StreamerConfig
from streamer.config.schema_edges import InfluxSink, KafkaSource, MqttSource
from streamer.core.durations import parse_duration
from tests.compose import compose, env_example, flags, mounts, service, stack
from tests.dockerfile import env, instructions

REPO = Path(__file__).parents[2]
CONFIG_IN_IMAGE = "/etc/streamer/streamer.yaml"
STATE_IN_IMAGE = "/var/lib/streamer"


def container_config() -> StreamerConfig:
    """config/container.yaml as the streamer service's environment resolves it."""
    source = Path(mounts("streamer")[CONFIG_IN_IMAGE])
    return load_config(source, environ=service("streamer")["environment"])


def test_compose_file_resolves_with_the_example_env_and_has_the_whole_stack() -> None:
    assert set(stack()["services"]) == {
        "kafka",
        "kafka-topics",
        "influxdb",
        "mosquitto",
        "grafana",
        "streamer",
        "producer",
    }
    assert service("influxdb")["image"].startswith("influxdb:2.7")
    kafka = service("kafka")["environment"]
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert mounts("kafka")[kafka["KAFKA_LOG_DIRS"]] == "kafka-data"
    assert service("streamer")["build"]["context"] == str(REPO)


def test_a_missing_secret_is_named_when_the_stack_is_resolved(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    done = compose("config", "--quiet", env_file=empty)
    assert done.returncode != 0
    required = re.findall(r"\$\{(\w+):\?", (REPO / "docker-compose.yml").read_text())
    assert any(f"set {name} in .env" in done.stderr for name in required), done.stderr
    assert ".env.example" in done.stderr


def test_every_secret_and_setting_the_stack_reads_is_in_the_example_env() -> None:
    used = set(re.findall(r"\$\{(\w+)", (REPO / "docker-compose.yml").read_text()))
    used |= set(re.findall(r"\$\{(\w+)", (REPO / "config/container.yaml").read_text()))
    assert used <= set(env_example()), f"not in .env.example: {used - set(env_example())}"


def test_every_mounted_file_is_in_the_repository() -> None:
    for name in stack()["services"]:
        for m in service(name).get("volumes", []):
            if m["type"] == "bind":
                assert Path(m["source"]).exists(), f"{name} mounts {m['source']}, which is missing"
                assert Path(m["source"]).is_relative_to(REPO)


def test_the_container_config_reaches_the_stacks_services() -> None:
    config = container_config()
    names = set(stack()["services"])
    topics_made = " ".join(service("kafka-topics")["command"])
    producer = flags("producer")
    kafka_env = service("kafka")["environment"]
    for source in config.sources:
        if isinstance(source, KafkaSource):
            for server in source.bootstrap_servers:
                assert f"PLAINTEXT://{server}" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]
                assert server.split(":")[0] in names
            assert source.kind == "price"
            assert "ticks" in producer["kafka-streams"].split(",")
            assert source.topics == [producer["ticks-topic"]]
            assert producer["ticks-topic"] in topics_made.split(), "the topic is not created"
        elif isinstance(source, MqttSource):
            assert source.kind == "sensor"
            assert "readings" in producer["mqtt-streams"].split(",")
            assert source.host == "mosquitto"
            assert producer["mqtt"] == f"{source.host}:{source.port}"
            listener = re.search(r"^listener (\d+)", _mosquitto_conf(), re.M)
            assert listener
            assert int(listener.group(1)) == source.port
            assert source.topics == [f"{producer['mqtt-prefix']}/sensors/+"]
        else:
            pytest.fail(f"the container reads a {source.type} source: a file it does not have")
    assert producer["kafka"] in kafka_env["KAFKA_ADVERTISED_LISTENERS"]


def _mosquitto_conf() -> str:
    mosquitto = {t: Path(s) for t, s in mounts("mosquitto").items()}
    return mosquitto["/mosquitto/config/mosquitto.conf"].read_text()


def test_streamer_and_grafana_use_the_influxdb_that_compose_initialises() -> None:
    init = service("influxdb")["environment"]
    (sink,) = [s for s in container_config().sinks if isinstance(s, InfluxSink)]
    url = urlsplit(sink.url)
    assert url.hostname == "influxdb"
    assert url.port == _published("influxdb", 8086)
    assert sink.org == init["DOCKER_INFLUXDB_INIT_ORG"] == env_example()["INFLUX_ORG"]
    assert sink.bucket == init["DOCKER_INFLUXDB_INIT_BUCKET"] == env_example()["INFLUX_BUCKET"]
    assert sink.token.get_secret_value() == init["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"]

    grafana = service("grafana")
    provisioning = Path(mounts("grafana")["/etc/grafana/provisioning"])
    (source,) = yaml.safe_load((provisioning / "datasources/influxdb.yaml").read_text())[
        "datasources"
    ]
    resolved = json.loads(
        re.sub(r"\$\{(\w+)\}", lambda m: grafana["environment"][m.group(1)], json.dumps(source))
    )
    assert resolved["url"] == sink.url
    assert resolved["jsonData"]["organization"] == sink.org
    assert resolved["jsonData"]["defaultBucket"] == sink.bucket
    assert resolved["secureJsonData"]["token"] == sink.token.get_secret_value()

    (provider,) = yaml.safe_load((provisioning / "dashboards/streamer.yaml").read_text())[
        "providers"
    ]
    dashboards = Path(mounts("grafana")[provider["options"]["path"]])
    assert (dashboards / "streamer-forecasts.json").exists()
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (dashboards / Path(home).relative_to(provider["options"]["path"])).exists()


def _published(name: str, target: int) -> int:
    ports = {p["target"] for p in service(name).get("ports", [])}
    assert target in ports, f"{name} does not publish {target}"
    return target


def test_the_image_reads_the_mounted_config_and_keeps_its_state_on_the_volume() -> None:
    assert env()["STREAMER_CONFIG"] == CONFIG_IN_IMAGE
    assert f"config/container.yaml {CONFIG_IN_IMAGE}" in instructions("COPY")
    assert mounts("streamer")[CONFIG_IN_IMAGE] == str(REPO / "config/container.yaml")
    assert instructions("VOLUME") == [STATE_IN_IMAGE]
    assert mounts("streamer")[STATE_IN_IMAGE] == "streamer-state"
    config = container_config()
    assert config.checkpoint.enabled
    assert config.checkpoint.path.is_relative_to(STATE_IN_IMAGE)
    assert config.pipeline.dead_letter is not None
    assert Path(getattr(config.pipeline.dead_letter, "path", "")).is_relative_to(STATE_IN_IMAGE)


def test_health_checks_ask_the_port_the_daemon_serves() -> None:
    host, port = container_config().http.bind.rsplit(":", 1)
    assert host == "0.0.0.0", "in a container the endpoint must listen on every interface"
    (check,) = instructions("HEALTHCHECK")
    assert f"http://127.0.0.1:{port}/healthz" in check
    assert instructions("EXPOSE") == [port]
    assert _published("streamer", int(port))


def test_a_stop_can_finish_within_compose_grace_period() -> None:
    grace = parse_duration(service("streamer")["stop_grace_period"])
    assert grace > container_config().shutdown_timeout
    assert instructions("STOPSIGNAL") == ["SIGTERM"]
    assert instructions("ENTRYPOINT") == ['["streamer", "run"]']


def test_the_image_installs_as_the_readme_says_without_dev_tools_and_with_cpu_torch() -> None:
    readme = (REPO / "README.md").read_text()
    assert "scripts/setup.sh && .venv/bin/streamer run" in readme
    runs = " ".join(instructions("RUN"))
    assert "scripts/setup.sh" in runs
    assert env()["STREAMER_EXTRAS"] == ""
    assert env()["UV_TORCH_BACKEND"] == "cpu"
    # What setup.sh installs must be in the build stage: the project and its packages.
    pyproject = (REPO / "pyproject.toml").read_text()
    packages = re.search(r"include = \[([^]]*)\]", pyproject)
    assert packages
    copied = " ".join(instructions("COPY"))
    for package in re.findall(r'"(\w+)\*"', packages.group(1)):
        assert f"{package}/ {package}/" in copied
    assert "pyproject.toml README.md ./" in copied
    assert "scripts/setup.sh scripts/" in copied
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".venv" in ignored
    assert ".git" in ignored


def test_the_image_is_multi_stage_on_slim_python_311_and_runs_as_a_user() -> None:
    base = re.search(r"PYTHON_IMAGE=(\S+)", " ".join(instructions("ARG", stage=0)))
    assert base
    assert base.group(1).startswith("python:3.11-slim")
    stages = instructions("FROM")
    assert len(stages) == 2
    assert stages[0].endswith("AS build")
    assert "COPY --from=build /opt/streamer /opt/streamer" in [
        f"COPY {a}" for a in instructions("COPY")
    ]
    (user,) = instructions("USER")
    assert user not in ("root", "0")


def test_the_container_config_is_a_valid_config_with_the_stacks_environment() -> None:
    config = container_config()
    assert config.http.enabled
    assert config.shutdown_timeout == timedelta(seconds=30)


def test_the_instance_name_of_the_env_file_reaches_the_daemon_and_its_kafka_membership() -> None:
    example = env_example()
    assert service("streamer")["environment"]["STREAMER_INSTANCE"] == example["STREAMER_INSTANCE"]
    config = container_config()
    assert config.instance == example["STREAMER_INSTANCE"]
    kafka_sources = [s for s in config.sources if isinstance(s, KafkaSource)]
    assert kafka_sources
    assert all(s.static_membership for s in kafka_sources)
