"""What a new user meets first: a config that takes the defaults for what it leaves out,
errors that name the accepted choices, and an example config that reads the demo
producer and the compose stack as they come."""

from __future__ import annotations

import argparse
import csv
import itertools
import textwrap
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
import yaml

from streamer.config.file import parse_config
from streamer.config.schema import LstmModel, PageHinkleyDetector, ReplaySource
from streamer.core.errors import ConfigError
from streamer.service import cli_demo
from tests.compose import service
from tests.helpers import EXAMPLE, example_with_streams

REPO = Path(__file__).parents[2]

EDGES = """
sources:
  - type: replay
    path: data.csv
sinks:
  - type: file
    path: out.lp
"""


def parse(text: str) -> object:
    return parse_config(textwrap.dedent(text), "test.yaml", {})


def problems(text: str) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        parse(text)
    return {p.path: p.message for p in info.value.problems}


def test_a_model_section_without_a_type_is_the_lstm_with_what_it_sets() -> None:
    config = parse_config(EDGES + "model: {horizon: 24, hidden_size: 8}\n", "t.yaml", {})
    assert isinstance(config.model, LstmModel)
    assert (config.model.horizon, config.model.hidden_size) == (24, 8)
    empty = parse_config(EDGES + "model:\n", "t.yaml", {})
    assert isinstance(empty.model, LstmModel)


def test_a_detector_without_a_type_is_page_hinkley_with_what_it_sets() -> None:
    config = parse_config(EDGES + "drift: {detector: {threshold: 3}}\n", "t.yaml", {})
    assert isinstance(config.drift.detector, PageHinkleyDetector)
    assert config.drift.detector.threshold == 3


def test_a_required_choice_names_its_accepted_values() -> None:
    found = problems("model: {horizon: 24}\nsources: [{path: x.csv}]\n")
    assert found["sources[0].type"] == "missing; expected one of 'kafka', 'mqtt', 'replay'"
    assert found["sinks"] == (
        "required, but missing; a list, each item with `type` one of 'influxdb', 'file', 'kafka'"
    )
    assert "model.type" not in found


def test_the_example_replays_a_file_that_ships_with_its_columns_at_its_cadence() -> None:
    config = parse_config(yaml.safe_dump(example_with_streams()), "example streams", {})
    history = config.stream_configs()["history"]
    (replay,) = history.sources
    assert isinstance(replay, ReplaySource)
    path = REPO / replay.path
    assert path.is_file(), f"{replay.path} does not exist"
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert {replay.fields.series, replay.fields.value, replay.fields.time} <= set(rows[0])
    days = sorted({date.fromisoformat(row[replay.fields.time][:10]) for row in rows})
    gaps = Counter(b - a for a, b in itertools.pairwise(days))
    assert gaps.most_common(1)[0][0] == history.window.step  # a trading day: one step
    assert max(gaps) <= history.window.step * (history.window.max_gap + 1)  # none resets


def test_the_example_reads_the_topics_demo_produce_sends_to_by_default() -> None:
    example = yaml.safe_load(EXAMPLE.read_text())
    kafka, mqtt = (s for s in example["sources"] if s["type"] in ("kafka", "mqtt"))
    parser = cli_demo_parser()
    defaults = parser.parse_args(["demo-produce"])
    assert kafka["topics"] == [defaults.ticks_topic]
    assert kafka["bootstrap_servers"] == [cli_demo.DEFAULT_KAFKA]
    assert mqtt["topics"] == [f"{defaults.mqtt_prefix}/sensors/+"]
    assert f"{mqtt['host']}:{mqtt['port']}" == cli_demo.DEFAULT_MQTT


def test_demo_produce_defaults_reach_the_compose_stacks_brokers_from_the_host() -> None:
    published = {
        name: {str(p["published"]) for p in service(name)["ports"]}
        for name in ("kafka", "mosquitto")
    }
    assert cli_demo.DEFAULT_KAFKA.rsplit(":")[1] in published["kafka"]
    assert cli_demo.DEFAULT_MQTT.rsplit(":")[1] in published["mosquitto"]
    advertised = service("kafka")["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert "HOST://localhost:9092" in advertised.split(",")


def cli_demo_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    cli_demo.add_demo(parser.add_subparsers())
    return parser


def test_an_unset_training_window_grows_to_fit_the_horizon_and_a_set_one_is_checked() -> None:
    config = parse_config(EDGES + "model: {horizon: 24}\n", "t.yaml", {})
    assert config.retrain.window == 128  # above 2 seasons of lags (48) - 1 + 24
    found = problems(EDGES + "model: {horizon: 24}\nretrain: {window: 64}\n")
    assert "retrain.window (64) must be more than model.lags (48" in found[""]


def test_the_examples_streams_block_is_a_valid_config_of_three_cadences() -> None:
    config = parse_config(yaml.safe_dump(example_with_streams()), "example streams", {})
    streams = config.stream_configs()
    assert {n: (str(c.window.step), c.window.aggregation) for n, c in streams.items()} == {
        "ticks": ("0:00:01", "last"),
        "sensors": ("0:00:10", "mean"),
        "history": ("1 day, 0:00:00", "last"),
    }
    assert [s.name for s in streams["ticks"].sinks] == ["influx"]
