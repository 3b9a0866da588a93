"""Several streams in one daemon: each its own sources, cadence, model, sinks,
checkpoint and metrics, in one process; a config without `streams` is one stream as
before."""

from __future__ import annotations

import csv
import itertools
import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from connectors.line_protocol import parse_line
from streamer.config.file import parse_config
from streamer.config.schema import LastValueModel, LstmModel
from streamer.core.errors import ConfigError
from streamer.engine.snapshot import Snapshot, WriterStatus
from streamer.service.health import _each, health, readiness
from streamer.service.metrics import Metrics

REPO = Path(__file__).parents[2]

TWO = """
streams:
  ticks:
    sources: [{type: replay, kind: price, path: ticks.csv}]
    window: {step: 1m, aggregation: ohlc}
    model: {type: last_value, horizon: 3}
    sinks: [prices]
  sensors:
    sources:
      - {type: replay, path: a.csv}
      - {type: replay, path: b.csv, name: plant-b}
    window: {step: 10s, aggregation: mean}
    sinks: [readings, store]
model: {horizon: 6, hidden_size: 8}
pipeline: {dead_letter: {type: file, path: state/dead.jsonl}}
sinks:
  - {type: file, name: prices, path: prices.lp}
  - {type: file, name: readings, path: readings.lp}
  - {type: influxdb, name: store, url: "http://127.0.0.1:8086", org: o, bucket: b, token: t}
"""


def parse(text: str) -> object:
    return parse_config(textwrap.dedent(text), "t.yaml", {})


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(text)
    return [f"{p.path}: {p.message}" for p in info.value.problems]


def test_each_stream_takes_its_own_sections_the_configs_otherwise_and_its_own_files() -> None:
    config = parse_config(TWO, "t.yaml", {})
    streams = config.stream_configs()
    assert list(streams) == ["ticks", "sensors"]
    ticks, sensors = streams["ticks"], streams["sensors"]
    assert (ticks.window.step, ticks.window.aggregation) == (timedelta(minutes=1), "ohlc")
    assert isinstance(ticks.model, LastValueModel)
    assert ticks.model.horizon == 3
    assert isinstance(sensors.model, LstmModel)  # the config's own model section
    assert (sensors.model.horizon, sensors.model.hidden_size) == (6, 8)
    assert [s.name for s in ticks.sinks] == ["prices"]
    assert [s.name for s in sensors.sinks] == ["readings", "store"]
    assert [s.name for s in sensors.sources] == ["sensors-0", "plant-b"]
    assert [s.name for s in config.sources] == ["ticks", "sensors-0", "plant-b"]
    assert str(ticks.checkpoint.path) == "state/checkpoint.ticks.db"
    assert str(sensors.pipeline.dead_letter.path) == "state/dead.sensors.jsonl"  # type: ignore[union-attr]


def test_a_stream_without_sinks_writes_to_every_sink() -> None:
    text = TWO.replace("    sinks: [readings, store]\n", "").replace("readings.lp", "other.lp")
    text = text.replace(
        "{type: file, name: prices, path: prices.lp}",
        "{type: kafka, name: prices, topic: p, bootstrap_servers: 'h:9092'}",
    )
    config = parse_config(text, "t.yaml", {})
    sinks = config.stream_configs()["sensors"].sinks
    assert [s.name for s in sinks] == ["prices", "readings", "store"]


def test_a_stream_config_that_cannot_work_is_refused_saying_why() -> None:
    both = problems(TWO.replace("streams:", "sources: [{type: replay, path: x.csv}]\nstreams:", 1))
    assert any("either `sources` (one stream) or `streams`" in p for p in both)
    unknown = problems(TWO.replace("sinks: [prices]", "sinks: [influx]"))
    assert any("streams.ticks.sinks: ['influx'] not among the config's sinks" in p for p in unknown)
    shared = problems(TWO.replace("    sinks: [readings, store]\n", ""))
    assert any(
        "file sink prices.lp would take the output of streams ['ticks', 'sensors']" in p
        for p in shared
    )
    twice = problems(TWO.replace("name: plant-b", "name: ticks"))
    assert any("two sources are named 'ticks'" in p for p in twice)
    short = problems(
        TWO.replace(
            "model: {type: last_value, horizon: 3}",
            "model: {horizon: 40}\n    retrain: {window: 32}",
        )
    )
    assert any("stream 'ticks': retrain" in p and "must be more than" in p for p in short)
    badly = problems(TWO.replace("  sensors:", "  'two words':"))
    assert any("streams" in p for p in badly)


def write_series(path: Path, names: list[str], every: timedelta, rows: int) -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["ts", "id", "v"])
        for t in range(rows):
            at = (t0 + t * every).isoformat()
            out.writerows([at, name, 10 + (t % 7) + k] for k, name in enumerate(names))


def test_one_daemon_runs_each_stream_at_its_own_cadence_into_its_own_sinks(tmp_path: Path) -> None:
    write_series(tmp_path / "ticks.csv", ["AAA", "BBB"], timedelta(seconds=10), 120)
    write_series(tmp_path / "plant.csv", ["p1", "p2", "p3"], timedelta(seconds=1), 600)
    fields = "stop_at_end: true, fields: {series: id, value: v, time: ts, time_unit: iso8601}"
    config = tmp_path / "c.yaml"
    config.write_text(
        textwrap.dedent(f"""
        streams:
          ticks:
            sources: [{{type: replay, kind: price, path: {tmp_path}/ticks.csv, {fields}}}]
            window: {{step: 1m}}
            model: {{type: last_value, horizon: 2}}
            sinks: [prices]
          plant:
            sources: [{{type: replay, path: {tmp_path}/plant.csv, {fields}}}]
            window: {{step: 10s, aggregation: mean}}
            model: {{type: seasonal_naive, horizon: 3, season_length: 6}}
            sinks: [readings]
        sinks:
          - {{type: file, name: prices, path: {tmp_path}/prices.lp}}
          - {{type: file, name: readings, path: {tmp_path}/readings.lp}}
        checkpoint: {{path: {tmp_path}/state.db}}
        http: {{enabled: false}}
        """)
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "streamer", "run", "-c", str(config)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "stream ticks: done: 240 events read, 0 rejected" in done.stdout
    assert "stream plant: done: 1800 events read, 0 rejected" in done.stdout
    assert "[ticks] " in done.stderr  # each stream's log lines say whose they are

    for sink, series, step_s, model in (
        ("prices", {"AAA", "BBB"}, 60, "last_value"),
        ("readings", {"p1", "p2", "p3"}, 10, "seasonal_naive"),
    ):
        points = [parse_line(line) for line in (tmp_path / f"{sink}.lp").read_text().splitlines()]
        observed = [p for p in points if p.measurement == "observed"]
        assert {p.tags["series"] for p in observed} == series
        times = sorted({p.time or 0 for p in observed if p.tags["series"] == min(series)})
        assert {b - a for a, b in itertools.pairwise(times)} == {step_s * 10**9}
        assert {p.tags["model"] for p in points if p.measurement == "forecast"} == {model}
        stats = [p for p in points if p.measurement == "streamer_stats"]
        assert {p.tags.get("stream") for p in stats} == {"ticks" if sink == "prices" else "plant"}
    assert (tmp_path / "state.ticks.db").exists()
    assert (tmp_path / "state.plant.db").exists()


def test_metrics_and_health_say_which_stream() -> None:
    one, other = Snapshot(events_in=5), Snapshot(events_in=7)
    metrics = Metrics().collect_from({"ticks": lambda: one, "plant": lambda: other})
    from prometheus_client import generate_latest

    text = generate_latest(metrics.registry).decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("streamer_events_in_total", (("stream", "ticks"),))] == 5
    assert samples[("streamer_events_in_total", (("stream", "plant"),))] == 7
    seen = {"ticks": (one, WriterStatus()), "plant": (other, WriterStatus())}
    ok, body = _each(seen, readiness, "ready")
    assert not ok  # neither has started
    assert set(body["streams"]) == {"ticks", "plant"}
    assert body["status"] == "not ready"
    alive, _ = _each(seen, lambda s, w: health(s, w, stall_after=1e9), "ok")
    assert alive
    assert json.dumps(body)


def test_commands_about_one_model_ask_which_stream(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from streamer.service.cli import main

    config = tmp_path / "two.yaml"
    config.write_text(TWO)
    for command in (
        ["model", "export", "-c", str(config), "m"],
        ["train", "-c", str(config), "--data", "x"],
    ):
        assert main(command) == 2
        assert (
            "several streams (ticks, sensors): say which with --stream NAME"
            in capsys.readouterr().err
        )
    assert main(["model", "export", "-c", str(config), "--stream", "nope", "m"]) == 2
    assert "--stream 'nope': the config's streams are ticks, sensors" in capsys.readouterr().err
