"""Outputs to a local file, as InfluxDB line protocol or CSV.

Appends are flushed and fsynced by `flush`. The checkpoint records the file's size, and a
restore truncates the file back to it, so output replayed after a crash is written once.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Literal

from connectors.base import Output, SinkBase
from connectors.points import iso_times, lines, squared_error
from streamer.core.records import Forecasts

CSV_HEADER = (
    "measurement,time,series,kind,model,horizon,value,yhat,lower,upper,issued_at,version,details\n"
)


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text


def csv_rows(output: Output) -> list[str]:
    """observed and forecast rows with the columns of CSV_HEADER; an event's fields go
    to `details` as key=value pairs."""
    batch, f = output.observed, output.forecasts
    rows = [
        f"observed,{t},{_quote(str(s))},{k},,,{v!r},,,,,,"
        for s, k, v, t in zip(
            batch.series, batch.kinds, batch.target.tolist(), iso_times(batch.times_ns), strict=True
        )
    ]
    for part in f.parts():
        rows.extend(_forecast_rows(part))
    if output.errors is not None and len(output.errors):
        e = output.errors
        times = iso_times(e.times_ns)
        for s, h, m, err, t in zip(
            e.series, e.horizon.tolist(), e.model, e.error.tolist(), times, strict=True
        ):
            if not math.isfinite(err):  # as in line protocol: no point for no error
                continue
            rows.append(
                f"forecast_error,{t},{_quote(str(s))},,{_quote(str(m))},{h},,,,,,,"
                f"abs_err={abs(err)!r}{squared_error(abs(err), ';sq_err=')}"
            )
    for event in output.events:
        (time,) = iso_times(event.time_ns)
        series, model = event.tags.get("series", ""), event.tags.get("model", "")
        details = ";".join(f"{k}={v}" for k, v in {**event.tags, **event.fields}.items())
        rows.append(
            f"{event.measurement},{time},{_quote(series)},,{_quote(model)},,,,,,,,{_quote(details)}"
        )
    return rows


class FileSink(SinkBase):
    """Append outputs to `path` (directories are created)."""

    def __init__(
        self,
        path: Path,
        format: Literal["line_protocol", "csv"] = "line_protocol",
        mode: Literal["append", "truncate"] = "append",
    ) -> None:
        self.path = path
        self.format = format
        self.mode = mode
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "ab")  # noqa: SIM115 - held open for the sink's lifetime
        self._header()

    def _header(self) -> None:
        if self.format == "csv" and self._file.tell() == 0:
            self._file.write(CSV_HEADER.encode())

    def start_fresh(self) -> None:
        """No checkpoint to continue from: in truncate mode, begin with an empty file."""
        if self.mode == "truncate":
            self._file.truncate(0)
            self._file.seek(0)
            self._header()

    def write(self, output: Output) -> None:
        rows = csv_rows(output) if self.format == "csv" else lines(output)
        if rows:
            self._file.write(("\n".join(rows) + "\n").encode())

    def flush(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def state_dict(self) -> dict[str, Any]:
        self.flush()
        return {"size": self._file.tell()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        size = int(state["size"])
        if self._file.tell() > size:
            self._file.truncate(size)
            self._file.seek(size)

    def close(self) -> None:
        if not self._file.closed:
            self.flush()
            self._file.close()


def _forecast_rows(f: Forecasts) -> list[str]:
    version = "" if f.version is None else str(f.version)
    targets = iso_times(f.target_times_ns().ravel())
    issued = iso_times(f.steps * f.step_ns)
    h = f.horizon
    rows = []
    for i, series in enumerate(f.series):
        name = _quote(str(series))
        for j in range(h):
            lower = "" if f.lower is None else repr(float(f.lower[i, j]))
            upper = "" if f.upper is None else repr(float(f.upper[i, j]))
            rows.append(
                f"forecast,{targets[i * h + j]},{name},,{f.model},{j + 1},,"
                f"{float(f.yhat[i, j])!r},{lower},{upper},{issued[i]},{version},"
            )
    return rows
