"""A long history file (one reading a line: time, series, value), as `streamer run`'s
replay sources read, turned into the wide file `streamer train` reads: one row per
time, one column per series (`train --series-col`)."""

from __future__ import annotations

import csv
from pathlib import Path

from connectors.replay import ReplaySourceError, csv_header, csv_records
from streamer.evaluation.options import EvaluateError


def pivot(path: Path, time_col: str, series_col: str, value_col: str, out: Path) -> list[str]:
    """Write `path`'s readings to `out` as a wide CSV (its time column `time_col`, in
    time order; a series' last reading at a time counts); the series, in order of first
    appearance."""
    rows: dict[str, dict[str, str]] = {}
    series: dict[str, None] = {}
    try:
        header = csv_header(path)
    except ReplaySourceError as exc:
        raise EvaluateError(str(exc)) from None
    missing = [c for c in (time_col, series_col, value_col) if c not in header]
    if missing:
        raise EvaluateError(
            f"{path}: no column {', '.join(map(repr, missing))}; its columns are "
            f"{', '.join(header)}"
        )
    for _, line in csv_records(path):  # one reading a line, as a replay source reads it
        at, name = line.get(time_col), line.get(series_col)
        if not at or not name:
            continue
        rows.setdefault(at, {})[name] = line.get(value_col, "")
        series.setdefault(name, None)
    if not rows:
        raise EvaluateError(f"{path}: no readings")
    names = list(series)
    with out.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([time_col, *names])
        for at in sorted(rows, key=_time_key):
            values = rows[at]
            writer.writerow([at, *(values.get(name, "") for name in names)])
    return names


def _time_key(text: str) -> tuple[int, float, str]:
    """Numbers by value, other times (ISO 8601) as text, which orders them."""
    try:
        number = float(text)
    except ValueError:
        return (1, 0.0, text)
    return (0, number, "")
