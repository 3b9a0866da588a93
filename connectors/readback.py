"""What a sink holds, read back as points (`streamer show`): the file sink's file (line
protocol or CSV) or an InfluxDB bucket, in the schema of `connectors.points`.

A file is read whole, line by line. From InfluxDB only what a summary needs is asked
for: each series' last observed value, its last forecasts for the next steps, and its
last `errors` forecast errors at horizon 1; or, for one series, its observed values and
its forecasts at one horizon.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from connectors.line_protocol import LineProtocolError, parse_line


@dataclass(frozen=True)
class Point:
    """One point: measurement, tags, fields and time (ns since the epoch)."""

    measurement: str
    tags: dict[str, str]
    fields: dict[str, Any]
    time_ns: int


class ReadbackError(RuntimeError):
    """The sink's data cannot be read; the message says where and why."""


def file_points(path: Path, file_format: str) -> Iterator[Point]:
    """Every point of a file sink's file, in the order written (lines that are not
    points, such as a line cut short by a crash, are skipped)."""
    try:
        with path.open(newline="", errors="replace") as f:
            if file_format == "csv":
                yield from _csv_points(f)
            else:
                for line in f:
                    try:
                        parsed = parse_line(line.rstrip("\n"))
                    except LineProtocolError:
                        continue
                    if parsed.time is not None:
                        yield Point(parsed.measurement, parsed.tags, parsed.fields, parsed.time)
    except FileNotFoundError:
        raise ReadbackError(f"{path} does not exist: the sink has written nothing yet") from None


def _csv_points(f: Any) -> Iterator[Point]:
    for row in csv.DictReader(f):
        measurement = row.get("measurement", "")
        try:
            time_ns = _iso_ns(row["time"])
        except (KeyError, ValueError):
            continue
        tags = {k: row[k] for k in ("series", "kind", "model", "horizon") if row.get(k)}
        fields: dict[str, Any] = {
            k: float(row[k]) for k in ("value", "yhat", "lower", "upper") if row.get(k)
        }
        if row.get("version"):
            fields["version"] = int(row["version"])
        for pair in (row.get("details") or "").split(";"):
            key, _, value = pair.partition("=")
            if key in ("abs_err", "sq_err") and value:
                fields[key] = float(value)
        yield Point(measurement, tags, fields, time_ns)


def _iso_ns(text: str) -> int:
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(at.timestamp()) * 1_000_000_000 + at.microsecond * 1_000


class InfluxReadback:
    """Reads a bucket with the InfluxDB sink's connection settings."""

    def __init__(
        self,
        url: str,
        org: str,
        token: str,
        bucket: str,
        ca_file: str | None = None,
        verify_ssl: bool = True,
        timeout_s: float = 60.0,
    ) -> None:
        from influxdb_client import InfluxDBClient

        self.bucket, self.where = bucket, f"InfluxDB at {url} bucket {bucket}"
        self._client = InfluxDBClient(
            url=url,
            token=token,
            org=org,
            timeout=int(timeout_s * 1000),
            verify_ssl=verify_ssl,
            ssl_ca_cert=ca_file,
        )

    def summary_points(self, start: str, errors: int) -> Iterator[Point]:
        """Per series: its last observed value, the forecasts of its latest steps at
        every horizon, and its last `errors` absolute errors at horizon 1."""
        base = f"from(bucket: {flux_string(self.bucket)}) |> range(start: {start})"
        yield from self._points(
            f'{base} |> filter(fn: (r) => r._measurement == "observed" and r._field == "value")'
            ' |> group(columns: ["series"]) |> last()'
        )
        yield from self._points(
            f'{base} |> filter(fn: (r) => r._measurement == "forecast")'
            ' |> group(columns: ["series", "horizon", "_field"]) |> last()'
        )
        yield from self._points(
            f'{base} |> filter(fn: (r) => r._measurement == "forecast_error" and '
            'r._field == "abs_err" and r.horizon == "1")'
            f' |> group(columns: ["series"]) |> tail(n: {int(errors)})'
        )

    def series_points(self, series: str, horizon: int, start: str) -> Iterator[Point]:
        """One series' observed values and its forecasts at `horizon`."""
        yield from self._points(
            f"from(bucket: {flux_string(self.bucket)}) |> range(start: {start})"
            f" |> filter(fn: (r) => r.series == {flux_string(series)})"
            ' |> filter(fn: (r) => r._measurement == "observed" or '
            f'(r._measurement == "forecast" and r.horizon == "{int(horizon)}"))'
        )

    def close(self) -> None:
        self._client.close()

    def _points(self, flux: str) -> Iterator[Point]:
        """One point per record (a field each); the caller merges fields by time."""
        from influxdb_client.rest import ApiException
        from urllib3.exceptions import HTTPError

        skip = {"result", "table", "_start", "_stop", "_time", "_value", "_field", "_measurement"}
        try:
            for record in self._client.query_api().query_stream(flux):
                v = record.values
                tags = {k: str(x) for k, x in v.items() if k not in skip and x is not None}
                at = v["_time"]
                time_ns = int(at.timestamp()) * 1_000_000_000 + at.microsecond * 1_000
                yield Point(v["_measurement"], tags, {v["_field"]: v["_value"]}, time_ns)
        except ApiException as exc:
            raise ReadbackError(
                f"{self.where} refused the query: {exc.status} {exc.reason}"
            ) from None
        except (HTTPError, OSError) as exc:
            raise ReadbackError(f"cannot read from {self.where}: {exc}") from None


def flux_string(text: str) -> str:
    """A Flux string literal of text."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${")
    return f'"{escaped}"'
