"""Every query of the shipped Grafana dashboard, run against a real InfluxDB that the real
daemon has written to.

The daemon replays real prices (the bundled S&P 500 closes, re-stamped one second apart
and ending now) through the LSTM with retraining and drift detection into InfluxDB.
Then each query in the dashboard JSON (panels, variables, annotations) is interpolated
the way Grafana does it: template variables first (a single value goes in raw), then
the Flux macros of Grafana's InfluxDB data source (v.timeRangeStart/Stop as RFC 3339
times, v.windowPeriod as a Go duration, v.defaultBucket and v.organization as strings)
and $__interval. A query that fails or returns nothing fails its test, and so does one
whose rows are not what its panel draws.
"""

from __future__ import annotations

import csv
import json
import math
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from influxdb_client import InfluxDBClient
from influxdb_client.client.flux_table import FluxTable

from tests.integration.conftest import Services
from tests.integration.daemon import REPO, Daemon

DASHBOARD = REPO / "config/grafana/dashboards/streamer-forecasts.json"
DATASOURCE = REPO / "config/grafana/provisioning/datasources/influxdb.yaml"
PRICES = REPO / "config/demo/sp500-prices.csv"
OUR_DATASOURCE = "streamer-influxdb"
HORIZON = 5
MAX_DATA_POINTS = 1000  # a panel about 1000 pixels wide


@dataclass(frozen=True)
class Query:
    """One Flux query of the dashboard, and what it feeds."""

    where: str  # e.g. "panel 4 (MAE by horizon)", "variable series", "annotation Drift"
    kind: str  # panel type, "variable" or "annotation"
    flux: str
    panel: dict[str, Any]


def dashboard_queries(dashboard: dict[str, Any]) -> list[Query]:
    """Every query that goes to our data source, in the order Grafana runs them."""
    out = []
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            out.append(Query(f"variable {var['name']}", "variable", var["query"], var))
    for note in dashboard["annotations"]["list"]:
        if note["datasource"].get("uid") == OUR_DATASOURCE:
            out.append(
                Query(f"annotation {note['name']}", "annotation", note["target"]["query"], note)
            )
    for panel in _panels(dashboard["panels"]):
        for t in panel.get("targets", []):
            title = re.sub(r"\$\{?\w+\}?:?\s*", "", panel["title"])  # test ids without ${...}
            where = f"panel {panel['id']} ({title}) {t['refId']}"
            out.append(Query(where, panel["type"], t["query"], panel))
    return out


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # panels folded into a row


# --- interpolation, as Grafana does it -----------------------------------------------


def go_time(moment: datetime) -> str:
    """Go's time.RFC3339Nano of a UTC time: trailing zeros of the fraction dropped."""
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
    return text + "Z"


def go_duration(seconds: float) -> str:
    """Go's time.Duration.String() for whole milliseconds: 500ms, 2s, 1m0s, 1h0m0s."""
    ms = round(seconds * 1000)
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:g}s"
    if hours:
        return f"{hours}h{minutes}m{secs}"
    return f"{minutes}m{secs}" if minutes else secs


# Grafana's rangeutil.roundInterval: (below this many ms, use that many).
_ROUNDED = [
    (15, 10), (35, 20), (75, 50), (150, 100), (250, 200), (350, 300), (750, 500),
    (1_500, 1_000), (3_500, 2_000), (7_500, 5_000), (12_500, 10_000), (17_500, 15_000),
    (25_000, 20_000), (45_000, 30_000), (90_000, 60_000), (210_000, 120_000),
    (450_000, 300_000), (750_000, 600_000), (1_050_000, 900_000), (1_500_000, 1_200_000),
    (2_700_000, 1_800_000), (5_400_000, 3_600_000),
]  # fmt: skip


def grafana_interval(start: datetime, stop: datetime, min_interval_s: float) -> float:
    """The panel interval in seconds: range / max data points, rounded, not below the
    data source's minimum interval."""
    raw_ms = (stop - start).total_seconds() * 1000 / MAX_DATA_POINTS
    rounded = next((to for below, to in _ROUNDED if raw_ms < below), 7_200_000)
    return max(rounded / 1000, min_interval_s)


@dataclass(frozen=True)
class Context:
    """What Grafana knows when it sends a query."""

    start: datetime
    stop: datetime
    interval_s: float
    bucket: str
    org: str
    variables: dict[str, str]

    def interpolate(self, flux: str) -> str:
        for name, value in self.variables.items():  # templateSrv.replace, single values
            flux = flux.replace("${" + name + "}", value)
            flux = re.sub(rf"\${name}\b", value.replace("\\", r"\\"), flux)
        macros = {
            "timeRangeStart": go_time(self.start),
            "timeRangeStop": go_time(self.stop),
            "windowPeriod": go_duration(self.interval_s),
            "defaultBucket": json.dumps(self.bucket),
            "bucket": json.dumps(self.bucket),
            "organization": json.dumps(self.org),
        }
        for match in set(re.findall(r"([a-zA-Z]+)\.([a-zA-Z]+)", flux)):
            if match[1] in macros:
                flux = flux.replace(f"{match[0]}.{match[1]}", macros[match[1]])
        flux = flux.replace("$__interval_ms", str(round(self.interval_s * 1000)))
        return flux.replace("$__interval", go_duration(self.interval_s))


# --- the data: the real daemon on real prices -----------------------------------------


@dataclass(frozen=True)
class Written:
    bucket: str
    start: datetime
    stop: datetime
    client: InfluxDBClient
    org: str


def restamped_prices(path: Path) -> int:
    """The bundled daily closes as one-second steps ending a few seconds ago; rows written."""
    with PRICES.open() as f:
        rows = list(csv.DictReader(f))
    days = sorted({r["date"] for r in rows})
    day_index = {d: i for i, d in enumerate(days)}
    end_ms = (int(time.time()) - 5) * 1000
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["ts", "symbol", "price"])
        for r in rows:
            out.writerow(
                [end_ms - (len(days) - 1 - day_index[r["date"]]) * 1000, r["symbol"], r["price"]]
            )
    return len(rows)


@pytest.fixture(scope="module")
def written(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Written]:
    workdir = tmp_path_factory.mktemp("dashboard")
    data = workdir / "prices.csv"
    restamped_prices(data)
    with InfluxDBClient(
        url=services.influx_url, token=services.influx_token, org=services.influx_org
    ) as client:
        buckets = client.buckets_api()
        bucket = buckets.create_bucket(bucket_name=f"test-dashboard-{uuid.uuid4().hex[:8]}")
        config = {
            "instance": "dashboard-test",
            "sources": [
                {
                    "type": "replay",
                    "name": "prices",
                    "kind": "price",
                    "path": str(data),
                    "speed": 100,  # 21 minutes of steps in about 13 s: time to retrain
                    "stop_at_end": True,
                    "fields": {
                        "series": "symbol",
                        "value": "price",
                        "time": "ts",
                        "time_unit": "ms",
                    },
                }
            ],
            "window": {"step": "1s", "aggregation": "last", "idle_close_after": "1s"},
            # The ensemble: its LSTM member's version and the members' weights are drawn.
            "model": {
                "type": "ensemble",
                "horizon": HORIZON,
                "hidden_size": 8,
                "lags": 4,
                "price_inputs": "returns",
            },
            "retrain": {"schedule": "1s", "window": 16, "burn_in": 4, "min_new_steps": 100},
            # Sensitive on purpose: every series has drift points to annotate.
            "drift": {
                "signal": "both",
                "detector": {"type": "page_hinkley", "threshold": 3.0, "min_instances": 20},
            },
            "pipeline": {"max_wait": "100ms"},
            "sinks": [
                {
                    "type": "influxdb",
                    "url": services.influx_url,
                    "org": services.influx_org,
                    "bucket": bucket.name,
                    "token": "${TEST_INFLUX_TOKEN}",
                }
            ],
            "checkpoint": {"enabled": False},
            "stats": {"every": "500ms"},
            "http": {"enabled": False},
            "logging": {"format": "json"},  # as in the container
        }
        started = datetime.now(UTC)
        daemon = Daemon(config, workdir, env={"TEST_INFLUX_TOKEN": services.influx_token})
        daemon.start()
        assert daemon.process is not None
        assert daemon.process.wait(180) == 0, daemon.log()[-3000:]
        log = daemon.log()
        assert "retrain (schedule)" in log, log[-3000:]
        # The container's logs: one JSON object a line, and never the token.
        assert [json.loads(line)["message"] for line in log.splitlines()]
        assert services.influx_token not in log
        # The dashboard's default range, as a user would look at it right after the run.
        written = Written(
            bucket=bucket.name,
            start=started - timedelta(minutes=30),
            stop=datetime.now(UTC) + timedelta(minutes=1),
            client=client,
            org=services.influx_org,
        )
        yield written
        buckets.delete_bucket(bucket)


def _load() -> tuple[dict[str, Any], float]:
    dashboard = json.loads(DASHBOARD.read_text())
    source = yaml.safe_load(DATASOURCE.read_text())["datasources"][0]
    min_interval = source["jsonData"].get("timeInterval", "1ms")
    unit = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    number, suffix = re.fullmatch(r"(\d+)(ms|s|m|h)", min_interval).groups()  # type: ignore[union-attr]
    return dashboard, int(number) * unit[suffix]


DASHBOARD_JSON, MIN_INTERVAL_S = _load()
QUERIES = dashboard_queries(DASHBOARD_JSON)


@pytest.fixture(scope="module")
def context(written: Written) -> Context:
    """The variables as Grafana resolves them on load: each query variable runs in
    order, and takes the first of its values in its sort order."""
    ctx = Context(
        written.start,
        written.stop,
        grafana_interval(written.start, written.stop, MIN_INTERVAL_S),
        written.bucket,
        written.org,
        {},
    )
    for var in DASHBOARD_JSON["templating"]["list"]:
        values = [str(r.get_value()) for t in _run(written, ctx, var["query"]) for r in t.records]
        assert values, f"variable {var['name']} has no values"
        numeric = var.get("sort") in (3, 4)
        ordered = sorted(values, key=float if numeric else str, reverse=var.get("sort") in (2, 4))
        ctx.variables[var["name"]] = ordered[0]
    return ctx


def _run(written: Written, ctx: Context, flux: str) -> list[FluxTable]:
    return written.client.query_api().query(ctx.interpolate(flux), org=written.org)


def test_the_dashboard_is_provisioned_from_our_data_source() -> None:
    source = yaml.safe_load(DATASOURCE.read_text())["datasources"][0]
    assert source["uid"] == OUR_DATASOURCE
    assert source["jsonData"]["version"] == "Flux"
    assert source["secureJsonData"]["token"] == "${INFLUX_TOKEN}"
    assert DASHBOARD_JSON["title"] == "Streamer forecasts"
    kinds = {q.kind for q in QUERIES}
    assert {"variable", "annotation", "timeseries", "barchart", "stat"} <= kinds
    names = {v["name"] for v in DASHBOARD_JSON["templating"]["list"]}
    assert "series" in names
    for q in QUERIES:
        used = set(re.findall(r"\$\{?(\w+)", q.flux)) - {"__interval", "__interval_ms"}
        assert used <= names, f"{q.where} uses undefined variables {used - names}"


@pytest.mark.parametrize("query", QUERIES, ids=[q.where for q in QUERIES])
def test_every_dashboard_query_returns_what_its_panel_draws(
    query: Query, written: Written, context: Context
) -> None:
    tables = _run(written, context, query.flux)
    rows = [r.values for t in tables for r in t.records]
    assert rows, f"{query.where} returned nothing:\n{context.interpolate(query.flux)}"
    check = {
        "variable": _check_variable,
        "annotation": _check_annotation,
        "timeseries": _check_timeseries,
        "stat": _check_stat,
        "barchart": _check_barchart,
        "table": _check_table,
    }[query.kind]
    check(query, tables)


def _check_variable(query: Query, tables: list[FluxTable]) -> None:
    values = [r.get_value() for t in tables for r in t.records]
    assert all(isinstance(v, str) and v for v in values)
    if query.panel["name"] == "horizon":
        assert sorted(map(int, values)) == list(range(1, HORIZON + 1))


def _check_annotation(query: Query, tables: list[FluxTable]) -> None:
    """Grafana makes an event of each row: the time from the first time column, the text
    from the column named text (a string column, not a label, so no group key)."""
    for table in tables:
        columns = {c.label: c for c in table.columns}
        assert "_time" in columns
        assert columns["_time"].data_type.startswith("dateTime")
        assert "text" in columns
        assert columns["text"].data_type == "string"
        assert not columns["text"].group
        for record in table.records:
            assert record["text"], f"{query.where}: an empty annotation text"


def _series_names(tables: list[FluxTable]) -> set[str]:
    """Each table is one Grafana series, named by its _field (the labels are the other
    group key columns)."""
    return {str(t.records[0].values.get("_field", "_value")) for t in tables if t.records}


def _check_timeseries(query: Query, tables: list[FluxTable]) -> None:
    for table in tables:
        for record in table.records:
            assert isinstance(record.get_time(), datetime)
            value = record.get_value()
            assert isinstance(value, int | float), record.values
            assert math.isfinite(value), record.values
    names = _series_names(tables)
    for override in query.panel["fieldConfig"]["overrides"]:
        matcher = override["matcher"]
        if matcher["id"] == "byName":
            assert matcher["options"] in names, f"{query.where}: no series {matcher['options']!r}"
        for prop in override["properties"]:
            if prop["id"] == "custom.fillBelowTo":
                assert prop["value"] in names, f"{query.where}: no series {prop['value']!r}"


def _check_stat(query: Query, tables: list[FluxTable]) -> None:
    values = [r.get_value() for t in tables for r in t.records]
    assert all(isinstance(v, int | float) for v in values), values


def _check_table(query: Query, tables: list[FluxTable]) -> None:
    """One table, a row per instance with its numbers (and, where the instance reads
    partitioned sources, the partitions it reads)."""
    assert len(tables) == 1, f"{query.where}: {len(tables)} tables, a table panel draws one"
    (table,) = tables
    instances = [r["instance"] for r in table.records]
    assert instances
    assert len(set(instances)) == len(instances), "one row per instance"
    for record in table.records:
        assert isinstance(record["live_series"], int | float)
        assert isinstance(record["events_in"], int | float)
        owned = record.values.get("partitions_owned")
        assert owned is None or isinstance(owned, str)


def _check_barchart(query: Query, tables: list[FluxTable]) -> None:
    """One table; the x field is a string column, in numeric order, and every other
    column is a number: one bar per model."""
    assert len(tables) == 1, f"{query.where}: {len(tables)} tables, a bar chart draws one"
    (table,) = tables
    x = query.panel["options"]["xField"]
    xs = [r[x] for r in table.records]
    assert all(isinstance(v, str) for v in xs)
    assert [int(v) for v in xs] == list(range(1, HORIZON + 1))
    bars = [c.label for c in table.columns if c.label not in (x, "result", "table")]
    assert bars, f"{query.where}: no value columns"
    for record in table.records:
        for name in bars:
            value = record[name]
            assert value is None or (isinstance(value, float) and math.isfinite(value)), (
                name,
                value,
            )
    assert any(record[name] is not None for record in table.records for name in bars)
