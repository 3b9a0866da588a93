"""History from InfluxDB as the wide CSV that `streamer train` reads: one row per time,
one column per series (`train --from-influx`).

By default it reads back what the daemon itself wrote (measurement `observed`, field
`value`, tag `series`), so that a new deployment can learn from an old one's inputs;
another measurement, field and series tag read any history kept in InfluxDB.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.readback import flux_string
from streamer.config import schema as cfg
from streamer.evaluation.options import EvaluateError

TIME_COL = "time"
PROGRESS_EVERY = 10_000  # rows


@dataclass(frozen=True)
class InfluxHistory:
    """What to read: the measurement and field, the tag naming the series, the range
    (Flux times: `-30d`, `2024-01-01T00:00:00Z`), and the bucket (None: the sink's)."""

    measurement: str = "observed"
    field: str = "value"
    series_tag: str = "series"
    start: str = "-30d"
    stop: str = "now()"
    bucket: str | None = None


def sink_of(config: cfg.StreamerConfig) -> cfg.InfluxSink:
    """The config's (first) InfluxDB sink, whose url, org and token the history is read with."""
    for sink in config.sinks:
        if isinstance(sink, cfg.InfluxSink):
            return sink
    raise EvaluateError(
        "--from-influx reads with the url, org and token of the config's InfluxDB sink, "
        "and the config has none"
    )


_FLUX_TIME = re.compile(
    r"^(now\(\)|-?(\d+(ns|us|ms|s|m|h|d|w|mo|y))+"
    r"|\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2}))?)$"
)


def _flux_time(text: str) -> str:
    """A Flux time: a duration before now (`-30d`), an RFC 3339 time or `now()`."""
    if not _FLUX_TIME.match(text):
        raise EvaluateError(
            f"{text!r} is not a time: give a duration before now (-30d, -12h) or an RFC 3339 "
            "time (2024-01-01T00:00:00Z)"
        )
    return text


def query(history: InfluxHistory, bucket: str) -> str:
    """The Flux that gives one row per time with a column per series, in time order."""
    start, stop = _flux_time(history.start), _flux_time(history.stop)
    return (
        f"from(bucket: {flux_string(bucket)}) |> range(start: {start}, stop: {stop}) "
        f"|> filter(fn: (r) => r._measurement == {flux_string(history.measurement)} "
        f"and r._field == {flux_string(history.field)}) "
        f'|> keep(columns: ["_time", "_value", {flux_string(history.series_tag)}]) '
        "|> group() "
        f'|> pivot(rowKey: ["_time"], columnKey: [{flux_string(history.series_tag)}], '
        'valueColumn: "_value") '
        '|> sort(columns: ["_time"])'
    )


def fetch(
    config: cfg.StreamerConfig,
    history: InfluxHistory,
    out: Path,
    say: Callable[[str], None] = lambda text: None,
) -> list[str]:
    """Write the history as a wide CSV at `out` (time column `TIME_COL`, ISO 8601); the
    series found, in column order. Raises EvaluateError when nothing is found or the
    server refuses."""
    from influxdb_client import InfluxDBClient
    from influxdb_client.rest import ApiException
    from urllib3.exceptions import HTTPError

    sink = sink_of(config)
    bucket = history.bucket or sink.bucket
    client = InfluxDBClient(
        url=sink.url,
        token=sink.token.get_secret_value(),
        org=sink.org,
        timeout=int(max(sink.timeout.total_seconds(), 60) * 1000),
        verify_ssl=sink.verify_ssl,
        ssl_ca_cert=str(sink.ca_file) if sink.ca_file else None,
    )
    where = f"{sink.url} bucket {bucket}"
    try:
        records = client.query_api().query_stream(query(history, bucket))
        series = _write(records, out, history.series_tag, say)
    except ApiException as exc:
        raise EvaluateError(
            f"InfluxDB at {where} refused the query: {exc.status} {exc.reason}"
        ) from None
    except (HTTPError, OSError) as exc:
        raise EvaluateError(f"cannot read from InfluxDB at {where}: {exc}") from None
    finally:
        client.close()
    if not series:
        raise EvaluateError(
            f"InfluxDB at {where} holds no {history.measurement}.{history.field} points with "
            f"a {history.series_tag!r} tag from {history.start} to {history.stop}"
        )
    return series


def _write(
    records: Iterable[Any], out: Path, series_tag: str, say: Callable[[str], None]
) -> list[str]:
    """Stream the pivoted records into the CSV; the series columns."""
    skip = {"result", "table", "_start", "_stop", "_time", series_tag}
    series: list[str] = []
    rows = 0
    with out.open("w", newline="") as f:
        writer = csv.writer(f)
        for record in records:
            values = record.values
            if not series:
                series = [k for k in values if k not in skip]
                writer.writerow([TIME_COL, *series])
            cells = [_cell(values.get(name)) for name in series]
            writer.writerow([values["_time"].isoformat(), *cells])
            rows += 1
            if rows % PROGRESS_EVERY == 0:
                say(f"read {rows:,} rows of {len(series)} series from InfluxDB ...")
    return series


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(float(value)) if isinstance(value, int | float) else str(value)
