"""What a user sees when a config is valid, wrong, or holds secrets."""

from __future__ import annotations

import logging
import re
import textwrap
import typing
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from streamer.config.file import load_config, parse_config
from streamer.config.schema import KafkaSource, StreamerConfig, sink_name
from streamer.core.errors import ConfigError
from streamer.service.cli import main
from tests.helpers import EXAMPLE, example_with_streams

MINIMAL = """
sources:
  - type: replay
    path: data.csv
sinks:
  - type: file
    path: out.lp
"""


def problems(text: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The problems a config text has, by key path."""
    with pytest.raises(ConfigError) as info:
        parse_config(textwrap.dedent(text), "test.yaml", environ or {})
    return {p.path: p.message for p in info.value.problems}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "streamer.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_example_config_is_valid() -> None:
    config = load_config(EXAMPLE, environ={})
    assert {s.type for s in config.sources} == {"kafka", "mqtt"}
    assert {s.type for s in config.sinks} == {"influxdb", "file", "kafka"}
    streams = parse_config(yaml.safe_dump(example_with_streams()), "example streams", {})
    assert {s.type for s in streams.sources} == {"kafka", "mqtt", "replay"}


def _models(annotation: typing.Any) -> typing.Iterator[type[BaseModel]]:
    """Every model class reachable from an annotation."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        for field in annotation.model_fields.values():
            yield from _models(field.annotation)
    for arg in typing.get_args(annotation):
        yield from _models(arg)


def test_example_config_documents_every_option() -> None:
    text = EXAMPLE.read_text()
    keys = set(re.findall(r"^[\s#]*-?\s*([a-z_]+):", text, flags=re.MULTILINE))
    missing = {
        f"{model.__name__}.{name}"
        for model in _models(StreamerConfig)
        for name in model.model_fields
        if name not in keys
    }
    assert not missing, f"options missing from {EXAMPLE.name}: {sorted(missing)}"


def test_validate_prints_a_one_line_summary_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "validate", str(write(tmp_path, MINIMAL))]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert "valid" in out
    assert "replay" in out


def test_typo_key_and_bad_duration_exit_2_naming_both_key_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        MINIMAL
        + """
window:
  stpe: 5s
  allowed_lateness: 5 parsecs
""",
    )
    assert main(["config", "validate", str(path)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    typo = next(line for line in lines if "window.stpe" in line)
    assert "unknown key" in typo
    assert "did you mean 'step'" in typo
    duration = next(line for line in lines if "window.allowed_lateness" in line)
    assert "'5 parsecs'" in duration
    assert "10s" in duration


def test_error_names_the_list_item_and_what_is_accepted() -> None:
    found = problems(
        """
        sources:
          - type: replay
            path: data.csv
          - type: kafka
            bootstrap_servers: localhost
            topics: [ticks]
          - type: kafak
        sinks:
          - type: file
        """
    )
    assert "'localhost' is not host:port" in found["sources[1].bootstrap_servers[0]"]
    assert "'kafka', 'mqtt', 'replay'" in found["sources[2].type"]
    assert found["sinks[0].path"] == "required, but missing"


def test_a_choice_outside_the_accepted_values_lists_them() -> None:
    found = problems(MINIMAL + "window:\n  aggregation: median\n")
    assert "'last', 'mean', 'sum' or 'ohlc'" in found["window.aggregation"]
    assert "got 'median'" in found["window.aggregation"]


def test_every_problem_is_reported_at_once() -> None:
    found = problems(MINIMAL + "http:\n  bind: nowhere\nmodel:\n  type: lstm\n  horizon: 0\n")
    assert set(found) == {"http.bind", "model.horizon"}


def test_file_that_is_not_yaml_reports_the_line() -> None:
    found = problems("sources: [\n")
    assert "invalid YAML" in found[""]
    assert "line" in found[""]


def test_a_key_given_twice_is_an_error_not_a_silent_override() -> None:
    found = problems(MINIMAL + "window:\n  step: 1s\n  step: 2s\n")
    assert "'step' is given twice" in found[""]


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read file"):
        load_config(tmp_path / "nope.yaml", environ={})


def test_field_names_default_by_stream_kind() -> None:
    config = parse_config(
        MINIMAL.replace("path: data.csv", "path: data.csv\n    kind: price"), environ={}
    )
    fields = config.sources[0].fields
    assert (fields.series, fields.value, fields.size) == ("symbol", "price", "size")


def test_sasl_without_credentials_says_what_is_missing() -> None:
    found = problems(
        MINIMAL
        + """
        pipeline:
          dead_letter:
            type: kafka
            topic: dlq
            bootstrap_servers: 127.0.0.1:9092
            security_protocol: SASL_SSL
            sasl_mechanism: PLAIN
        """.replace("        ", "")
    )
    assert "needs sasl_username, sasl_password" in found["pipeline.dead_letter"]


def test_mqtt_topic_filter_wildcards_are_checked() -> None:
    text = """
    sources:
      - type: mqtt
        topics: ["sensors/#/temp", "a+/b"]
    sinks:
      - type: file
        path: out.lp
    """
    found = problems(text)
    assert "is not an MQTT topic filter" in found["sources[0].topics[0]"]
    assert "is not an MQTT topic filter" in found["sources[0].topics[1]"]


# --- secrets -----------------------------------------------------------------------------

INFLUX = MINIMAL.replace(
    "sinks:\n",
    "sinks:\n  - type: influxdb\n    url: http://127.0.0.1:8086\n    org: o\n    bucket: b\n"
    "    token: ${INFLUX_TOKEN}\n",
)


def test_secret_from_env_reference_is_used_but_never_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFLUX_TOKEN", "s3cr3t-t0ken")
    config = load_config(write(tmp_path, INFLUX))
    sink = config.sinks[0]
    assert sink.type == "influxdb"
    assert sink.token.get_secret_value() == "s3cr3t-t0ken"
    assert "s3cr3t-t0ken" not in repr(config)
    assert main(["config", "show", str(tmp_path / "streamer.yaml")]) == 0
    shown = capsys.readouterr().out
    assert "s3cr3t-t0ken" not in shown
    assert "token: '**********'" in shown


def test_a_bad_secret_is_reported_without_its_value() -> None:
    found = problems(INFLUX.replace("${INFLUX_TOKEN}", "[s3cr3t, t0ken]"))
    assert "value hidden" in found["sinks[0].token"]
    assert "s3cr3t" not in found["sinks[0].token"]


def test_unset_env_reference_names_the_variable_and_the_key() -> None:
    found = problems(INFLUX)
    assert "INFLUX_TOKEN is not set" in found["sinks[0].token"]
    assert "${INFLUX_TOKEN:-value}" in found["sinks[0].token"]


def test_env_reference_default_and_literal_dollar() -> None:
    text = INFLUX.replace("${INFLUX_TOKEN}", "${INFLUX_TOKEN:-dflt}").replace(
        "bucket: b", "bucket: $${not-a-ref}"
    )
    sink = parse_config(text, environ={}).sinks[0]
    assert sink.type == "influxdb"
    assert sink.token.get_secret_value() == "dflt"
    assert sink.bucket == "${not-a-ref}"


# Each secret, in a section that holds it: (config text with {secret} for its key, path).
SECRET_KEYS = {
    "influxdb token": (INFLUX.replace("token: ${INFLUX_TOKEN}", "{secret}"), ("sinks", 0, "token")),
    "kafka sasl_password": (
        MINIMAL.replace(
            "  - type: replay\n    path: data.csv\n",
            "  - type: kafka\n    bootstrap_servers: [k:9092]\n    topics: [t]\n"
            "    security_protocol: SASL_SSL\n    sasl_mechanism: SCRAM-SHA-512\n"
            "    sasl_username: u\n    {secret}\n",
        ),
        ("sources", 0, "sasl_password"),
    ),
    "mqtt password": (
        MINIMAL.replace(
            "  - type: replay\n    path: data.csv\n",
            "  - type: mqtt\n    topics: [t/#]\n    username: u\n    {secret}\n",
        ),
        ("sources", 0, "password"),
    ),
}


@pytest.mark.parametrize(("text", "where"), SECRET_KEYS.values(), ids=SECRET_KEYS.keys())
def test_every_secret_can_come_from_a_file_as_docker_and_kubernetes_mount_them(
    text: str, where: tuple[str, int, str], tmp_path: Path
) -> None:
    section, index, key = where
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t from a file\n")  # `echo` leaves a newline; it is not part of it
    config = parse_config(text.replace("{secret}", f"{key}_file: {secret}"), environ={})
    value = getattr(getattr(config, section)[index], key)
    assert value.get_secret_value() == "s3cr3t from a file"
    assert "s3cr3t" not in repr(config)

    found = problems(text.replace("{secret}", f"{key}_file: {tmp_path / 'absent'}"))
    message = found[f"{section}[{index}]"]
    assert message == f"{key}_file: cannot read '{tmp_path / 'absent'}': No such file or directory"
    secret.write_text("")
    found = problems(text.replace("{secret}", f"{key}_file: {secret}"))
    assert found[f"{section}[{index}]"] == f"{key}_file: '{secret}' is empty"
    secret.write_text("s3cr3t")
    both = text.replace("{secret}", f"{key}: other\n    {key}_file: {secret}")
    found = problems(both)
    assert found[f"{section}[{index}]"] == f"give {key} or {key}_file, not both"
    assert not any("s3cr3t" in m or "other" in m for m in found.values())


def test_mqtt_tls_files_need_tls_and_a_client_certificate_needs_its_key() -> None:
    mqtt = MINIMAL.replace(
        "  - type: replay\n    path: data.csv\n", "  - type: mqtt\n    topics: [t/#]\n{tls}"
    )
    found = problems(mqtt.replace("{tls}", "    ca_file: ca.crt\n    cert_file: c.crt\n"))
    assert found["sources[0]"] == "ca_file and cert_file need tls: true"
    found = problems(mqtt.replace("{tls}", "    tls: true\n    cert_file: c.crt\n"))
    assert "cert_file and key_file go together" in found["sources[0]"]
    ok = parse_config(mqtt.replace("{tls}", "    tls: true\n    ca_file: ca.crt\n"), environ={})
    assert ok.sources[0].type == "mqtt"
    assert ok.sources[0].ca_file == Path("ca.crt")


def test_a_file_key_of_what_is_not_a_secret_is_an_unknown_key(tmp_path: Path) -> None:
    text = INFLUX.replace("bucket: b", f"bucket: b\n    org_file: {tmp_path}")
    found = problems(text, {"INFLUX_TOKEN": "t"})
    assert found["sinks[0].org_file"].startswith("unknown key")


# --- STREAMER__ overrides ----------------------------------------------------------------


def test_env_overrides_reach_nested_keys_and_list_items() -> None:
    config = parse_config(
        INFLUX,
        environ={
            "INFLUX_TOKEN": "from-file-ref",
            "STREAMER__WINDOW__STEP": "5s",
            "STREAMER__SINKS__0__TOKEN": "from-override",
            "STREAMER__SOURCES__0__SPEED": "10",
            "STREAMER__PIPELINE__SERIES_ALLOWLIST": "[a, b]",
        },
    )
    assert config.window.step == timedelta(seconds=5)
    assert config.sinks[0].type == "influxdb"
    assert config.sinks[0].token.get_secret_value() == "from-override"
    assert config.sources[0].type == "replay"
    assert config.sources[0].speed == 10
    assert config.pipeline.series_allowlist == ["a", "b"]


def test_env_override_can_add_a_list_item() -> None:
    config = parse_config(
        MINIMAL,
        environ={"STREAMER__SINKS__1__TYPE": "file", "STREAMER__SINKS__1__PATH": "more.csv"},
    )
    assert len(config.sinks) == 2


def test_bad_env_override_names_the_variable() -> None:
    found = problems(MINIMAL, {"STREAMER__WINDOW__MAX_GAP": "eighty"})
    assert "got 'eighty'" in found["window.max_gap"]
    assert "STREAMER__WINDOW__MAX_GAP" in found["window.max_gap"]
    found = problems(MINIMAL, {"STREAMER__SINKS__4__PATH": "x"})
    assert "index 4 is past the end" in found["sinks[4].path"]
    assert "STREAMER__SINKS__4__PATH" in found["sinks[4].path"]


def test_typo_in_env_override_is_an_unknown_key() -> None:
    found = problems(MINIMAL, {"STREAMER__WINDOW__STPE": "5s"})
    assert "unknown key" in found["window.stpe"]
    assert "STREAMER__WINDOW__STPE" in found["window.stpe"]


def test_retired_window_length_loads_with_one_warning_saying_to_delete_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    text = MINIMAL + "window:\n  length: 64\n  max_gap: 3\n"
    with caplog.at_level(logging.WARNING, logger="streamer.config.file"):
        config = parse_config(text, "old.yaml", {})
    assert config.window.max_gap == 3
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert message.startswith("old.yaml: window.length no longer does anything")
    assert message.endswith("; delete the line")


def test_retired_window_length_from_the_environment_says_to_unset_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="streamer.config.file"):
        parse_config(MINIMAL, "test.yaml", {"STREAMER__WINDOW__LENGTH": "eighty"})
    [record] = caplog.records
    assert "window.length (from environment variable STREAMER__WINDOW__LENGTH)" in (
        record.getMessage()
    )
    assert record.getMessage().endswith("; unset it")


def test_kafka_source_accepts_comma_separated_servers() -> None:
    source = KafkaSource.model_validate(
        {"type": "kafka", "bootstrap_servers": "a:9092, b:9093", "topics": ["t"]}
    )
    assert source.bootstrap_servers == ["a:9092", "b:9093"]


@pytest.mark.parametrize(
    ("given", "kept"), [("90m", "90m"), ("3600s", "1h"), ("*/15 * * * *", "*/15 * * * *")]
)
def test_retrain_schedule_is_an_interval_or_a_crontab(given: str, kept: str) -> None:
    config = parse_config(MINIMAL + f"retrain:\n  schedule: '{given}'\n", environ={})
    assert config.retrain.schedule == kept


def test_bad_retrain_schedule_says_both_forms() -> None:
    found = problems(MINIMAL + "retrain:\n  schedule: '61 * * * *'\n")
    assert "'15m'" in found["retrain.schedule"]
    assert "'*/15 * * * *'" in found["retrain.schedule"]


def test_training_windows_must_be_longer_than_burn_in_plus_horizon() -> None:
    found = problems(
        MINIMAL + "model:\n  type: lstm\n  horizon: 48\nretrain:\n  window: 64\n  burn_in: 16\n"
    )
    assert any(
        "retrain.window (64) must be more than retrain.burn_in (16) + model.horizon (48)" in p
        for p in found.values()
    ), found


GROUP_SOURCE = """
instance: {instance}
group: {{enabled: true}}
sources:
  - type: kafka
    topics: [readings]
    bootstrap_servers: [127.0.0.1:9092]
    {group_id}
sinks:
  - type: file
    path: out.lp
"""


def test_a_group_of_replicas_needs_a_shared_group_id_and_an_instance_each() -> None:
    ok = GROUP_SOURCE.format(instance="r1", group_id="group_id: readers")
    config = parse_config(textwrap.dedent(ok), "test.yaml", {})
    assert config.group.enabled
    (message,) = problems(GROUP_SOURCE.format(instance="r1", group_id="")).values()
    assert "set group_id on source(s) ['kafka-0'], the same in every replica" in message
    no_instance = "\n".join(line for line in ok.splitlines() if not line.startswith("instance"))
    (message,) = problems(no_instance).values()
    assert "set `instance`, unique per replica" in message


def test_an_mqtt_source_in_a_group_is_refused_pointing_to_the_bridge() -> None:
    text = """
    instance: r1
    group: {enabled: true}
    sources:
      - type: mqtt
        name: plant
        topics: [plant/#]
    sinks:
      - type: file
        path: out.lp
    """
    (message,) = problems(text).values()
    assert "MQTT source(s) ['plant'] cannot be shared out among replicas" in message
    assert "`streamer bridge`" in message


def test_sinks_are_named_by_type_and_index_unless_named_and_names_are_unique() -> None:
    config = parse_config(MINIMAL + "  - {type: file, path: b.lp, name: copy}\n", "t", {})
    assert [sink_name(s, i) for i, s in enumerate(config.sinks)] == ["file-0", "copy"]
    found = problems(MINIMAL + "  - {type: file, path: b.lp, name: file-0}\n")
    assert "two sinks are named 'file-0'" in found["sinks"]


# --- files: each has one use -------------------------------------------------------------

REPLAY = "sources:\n  - type: replay\n    path: data/in.csv\n"


@pytest.mark.parametrize(
    ("text", "first", "second"),
    [
        (
            REPLAY + "sinks:\n  - {type: file, path: out/f.lp}\n"
            "  - {type: file, path: ./out/../out/f.lp, format: csv}\n",
            "sinks[0].path",
            "sinks[1].path",
        ),
        (
            REPLAY + "sinks:\n  - {type: file, path: data/in.csv, mode: truncate}\n",
            "sinks[0].path",
            "sources[0].path",
        ),
        (
            MINIMAL + "pipeline:\n  dead_letter: {type: file, path: out.lp}\n",
            "sinks[0].path",
            "pipeline.dead_letter.path",
        ),
        (
            MINIMAL + "checkpoint:\n  path: ./out.lp\n",
            "sinks[0].path",
            "checkpoint.path",
        ),
        (
            REPLAY + "sinks:\n  - {type: file, path: out.lp}\n"
            "pipeline:\n  dead_letter: {type: file, path: data/in.csv}\n",
            "pipeline.dead_letter.path",
            "sources[0].path",
        ),
    ],
    ids=[
        "two-sinks",
        "sink-on-replay-input",
        "dead-letter-on-sink",
        "checkpoint-on-sink",
        "dead-letter-on-replay-input",
    ],
)
def test_two_keys_naming_one_file_are_refused_naming_both(
    text: str, first: str, second: str
) -> None:
    found = problems(text)
    assert f"{first} (" in found[""]
    assert f"{second} (" in found[""]
    assert "name the same file" in found[""]
    assert "give each its own file" in found[""]


def test_a_sink_on_another_streams_replay_input_or_checkpoint_is_refused() -> None:
    streams = """
        sinks:
          - {type: file, path: out/a.lp, name: a}
          - {type: file, path: %s, name: b}
        streams:
          ticks: {sources: [{type: replay, path: data/in.csv}], sinks: [a]}
          prices: {sources: [{type: replay, path: data/in.csv}], sinks: [b]}
        """
    found = problems(streams % "data/in.csv")
    assert "sinks[1].path (data/in.csv) and streams.ticks.sources[0].path" in found[""]
    found = problems(streams % "state/checkpoint.ticks.db")
    assert "checkpoint.path of stream ticks (state/checkpoint.ticks.db)" in found[""]


def test_replay_sources_may_read_one_file_and_a_disabled_checkpoint_names_none() -> None:
    text = REPLAY + "  - {type: replay, path: ./data/in.csv, name: again}\n"
    text += "sinks:\n  - {type: file, path: state/checkpoint.db}\ncheckpoint: {enabled: false}\n"
    assert len(parse_config(text, environ={}).sources) == 2


# --- config errors, not tracebacks --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "path", "expected"),
    [
        (MINIMAL + "http: {bind: 8000}\n", "http.bind", "host:port as a string"),
        (
            "sources: [{type: kafka, bootstrap_servers: [9092], topics: [t]}]\n"
            "sinks: [{type: file, path: o.lp}]\n",
            "sources[0].bootstrap_servers[0]",
            "host:port as a string",
        ),
        (
            REPLAY + "sinks: [{type: influxdb, url: 8086, org: o, bucket: b, token: t}]\n",
            "sinks[0].url",
            "8086 is not an http(s) URL",
        ),
        (
            "sources: [{type: mqtt, topics: [1]}]\nsinks: [{type: file, path: o.lp}]\n",
            "sources[0].topics[0]",
            "valid string",
        ),
        (MINIMAL + "window: {step: 99999999999d}\n", "window.step", "too long; at most 106751d"),
        (
            MINIMAL + "retrain: {schedule: 99999999999d}\n",
            "retrain.schedule",
            "too long; at most 106751d",
        ),
    ],
    ids=["bind-int", "bootstrap-int", "url-int", "mqtt-topic-int", "step-huge", "schedule-huge"],
)
def test_a_value_of_the_wrong_kind_is_a_config_error_at_its_key(
    text: str, path: str, expected: str
) -> None:
    assert expected in problems(text)[path]


def test_a_file_that_is_not_utf8_is_a_config_error_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(MINIMAL.encode() + "instance: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    (problem,) = info.value.problems
    assert "line 8, column 14: byte 0xe9 is not UTF-8" in problem.message


@pytest.mark.parametrize("key", ["[a, b]", "{a: 1}"])
def test_a_list_or_mapping_as_a_key_is_a_config_error_naming_the_line(key: str) -> None:
    found = problems(f"? {key}\n: 1\n")
    assert "line 1" in found[""]
    assert "a key must be a single value" in found[""]


# --- window lateness ---------------------------------------------------------------------


def test_a_lateness_bounded_only_by_the_memory_it_takes() -> None:
    # 30d at 1s for the default 10,000 series asked numpy for 1.7 TB at start.
    found = problems(MINIMAL + "window: {step: 1s, allowed_lateness: 30d}\n")
    assert "max_series (10000) x 2592002 open steps each" in found["window"]
    few = "window: {step: 1s, allowed_lateness: 4h, max_series: 50}\n"  # 52 MB: fine
    assert parse_config(MINIMAL + few, environ={}).window.open_steps == 14_402


def test_window_buckets_beyond_the_memory_limit_are_refused_naming_max_series() -> None:
    found = problems(MINIMAL + "window: {step: 1s, allowed_lateness: 1h, max_series: 100000}\n")
    assert "max_series (100000) x 3602 open steps" in found["window"]
    assert "at most 4 GiB" in found["window"]
    config = parse_config(MINIMAL + "window: {step: 1s, allowed_lateness: 1h}\n", environ={})
    assert config.window.open_steps == 3602


# --- env defaults, config show, errors in streams ----------------------------------------


def test_env_reference_default_applies_when_the_variable_is_set_but_empty() -> None:
    text = INFLUX.replace("${INFLUX_TOKEN}", "${INFLUX_TOKEN:-dflt}")
    text = text.replace("bucket: b", "bucket: ${BUCKET}x")
    sink = parse_config(text, environ={"INFLUX_TOKEN": "", "BUCKET": ""}).sinks[0]
    assert sink.type == "influxdb"
    assert sink.token.get_secret_value() == "dflt"
    assert sink.bucket == "x"


def test_config_show_of_streams_prints_a_config_that_loads_as_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "streams.yaml"
    path.write_text(yaml.safe_dump(example_with_streams()))
    assert main(["config", "show", str(path)]) == 0
    shown = capsys.readouterr().out
    assert "streams:" in shown
    assert not shown.startswith("sources:")
    assert "\nsources:" not in shown
    again = parse_config(shown, "shown", {})
    original = load_config(path, environ={})
    assert again.stream_configs().keys() == original.stream_configs().keys()
    assert again.summary() == original.summary()


def test_a_typo_in_a_stream_source_is_reported_once_at_the_key_written() -> None:
    found = problems(
        """
        sinks: [{type: file, path: out.lp}]
        streams:
          a: {sources: [{type: replay, pth: x}]}
        """
    )
    assert set(found) == {"streams.a.sources[0].path", "streams.a.sources[0].pth"}
    assert "did you mean 'path'?" in found["streams.a.sources[0].pth"]
    assert "accepted here: fields, file_format" in found["streams.a.sources[0].pth"]
