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

import yaml

from streamer.config.file import load_config
from streamer.config.schema import StreamerConfig
from streamer.config.schema_edges import InfluxSink, KafkaSink, KafkaSource, MqttSource
from streamer.core.durations import parse_duration
from tests.compose import compose, env_example, flags, mounts, service, stack
from tests.dockerfile import env, instructions

REPO = Path(__file__).parents[2]
CONFIG_IN_IMAGE = "/etc/streamer/streamer.yaml"
STATE_IN_IMAGE = "/var/lib/streamer"


# What Docker sets in every container besides compose's environment: the host name is
# the container's id, a different one for each replica.
DOCKER_ENV = {"HOSTNAME": "3f2a9c1d7e5b"}


def container_config(hostname: str = DOCKER_ENV["HOSTNAME"]) -> StreamerConfig:
    """config/container.yaml as one streamer container's environment resolves it."""
    source = Path(mounts("streamer")[CONFIG_IN_IMAGE])
    environ = {**service("streamer")["environment"], **DOCKER_ENV, "HOSTNAME": hostname}
    return load_config(source, environ=environ)


def bridge_config() -> StreamerConfig:
    """config/bridge.yaml as the bridge service's environment resolves it."""
    source = Path(mounts("bridge")["/etc/streamer/bridge.yaml"])
    return load_config(source, environ={**service("bridge").get("environment", {}), **DOCKER_ENV})


def test_compose_file_resolves_with_the_example_env_and_has_the_whole_stack() -> None:
    assert set(stack()["services"]) == {
        "kafka",
        "kafka-topics",
        "influxdb",
        "mosquitto",
        "grafana",
        "streamer",
        "bridge",
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
    used -= set(DOCKER_ENV)
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
    (forwarded,) = [s for s in bridge_config().sinks if isinstance(s, KafkaSink)]
    for source in config.sources:
        assert isinstance(source, KafkaSource), f"a {source.type} source cannot be scaled out"
        for server in source.bootstrap_servers:
            assert f"PLAINTEXT://{server}" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]
            assert server.split(":")[0] in names
        (topic,) = source.topics
        assert topic in topics_made.split(), f"the topic {topic} is not created"
        if source.kind == "price":
            assert "ticks" in producer["kafka-streams"].split(",")
            assert topic == producer["ticks-topic"]
        else:  # the sensor readings, through the bridge
            assert topic == forwarded.topic
            assert forwarded.bootstrap_servers == source.bootstrap_servers
            assert (source.fields.series, source.fields.value) == ("series", "value")
            assert (source.fields.time, source.fields.time_unit) == ("time", "ns")
    (mqtt,) = bridge_config().sources
    assert isinstance(mqtt, MqttSource)
    assert mqtt.kind == "sensor"
    assert "readings" in producer["mqtt-streams"].split(",")
    assert mqtt.host == "mosquitto"
    assert producer["mqtt"] == f"{mqtt.host}:{mqtt.port}"
    listener = re.search(r"^listener (\d+)", _mosquitto_conf(), re.M)
    assert listener
    assert int(listener.group(1)) == mqtt.port
    assert mqtt.topics == [f"{producer['mqtt-prefix']}/sensors/+"]
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


def test_the_streamer_service_scales_out_as_replicas_of_one_group() -> None:
    """`docker compose up --scale streamer=3`: no fixed name or host port, and each
    replica's config names it after its own container while sharing the groups."""
    streamer = service("streamer")
    assert "container_name" not in streamer
    (port,) = streamer["ports"]
    assert port["target"] == 8000
    first, last = map(int, port["published"].split("-"))
    assert last - first + 1 >= 3, "a host port for each of three replicas"
    one, other = container_config("3f2a9c1d7e5b"), container_config("8b1e0d4c2a6f")
    assert one.group.enabled
    assert (one.instance, other.instance) == ("3f2a9c1d7e5b", "8b1e0d4c2a6f")
    for a, b in zip(one.sources, other.sources, strict=True):
        assert isinstance(a, KafkaSource)
        assert isinstance(b, KafkaSource)
        assert a.group_id == b.group_id is not None  # one group per source, shared
        assert not a.static_membership  # a recreated container has a new host name
    assert service("bridge")["entrypoint"][:2] == ["streamer", "bridge"]
    assert "ports" not in service("bridge")  # one instance: nothing to scale
