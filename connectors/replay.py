"""Replay a file of events: CSV (optionally gzipped), or Parquet when pyarrow is installed.

Each data row is one event; its position is its row number, so a restore continues at
the row after the last checkpoint. `speed` is "max" (as fast as possible) or a factor of
real time, paced by each row's event time.
"""

from __future__ import annotations

import csv
import gzip
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Literal, cast

from connectors.base import RawRecord, StreamSource
from streamer.core.records import Position

EventTime = Callable[[Mapping[str, Any]], int | None]


class ReplaySourceError(ValueError):
    """The replay file cannot be read; the message says which file and why."""


def _open_binary(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return cast(IO[bytes], gzip.open(path, "rb"))
    return open(path, "rb")


def csv_records(path: Path) -> Iterator[tuple[bytes, dict[str, str]]]:
    """(raw line, row as a mapping) for each data row: one a non-blank line, as every
    reader of history files takes them (a stray quote cannot swallow the lines after
    it). Fields may not span lines; a line that cannot be split maps nothing."""
    with _open_binary(path) as stream:
        header_line = stream.readline()
        if not header_line.strip():
            raise ReplaySourceError(f"{path}: empty file, expected a header row")
        header = next(csv.reader([header_line.decode("utf-8-sig")]))
        for raw in stream:
            raw = raw.rstrip(b"\r\n")
            if not raw:
                continue
            try:
                values = next(csv.reader([raw.decode("utf-8")]))
            except (UnicodeDecodeError, csv.Error):
                values = []
            yield raw, dict(zip(header, values, strict=False))


def csv_header(path: Path) -> list[str]:
    """A CSV's column names ([] for an empty file); ReplaySourceError naming the file
    when it cannot be read (not gzip after all, truncated, not UTF-8)."""
    try:
        with _open_binary(path) as stream:
            line = stream.readline().decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise ReplaySourceError(f"{path}: its header is not UTF-8 text ({exc})") from None
    except (OSError, EOFError) as exc:
        raise ReplaySourceError(f"{path}: cannot be read ({exc})") from None
    return next(csv.reader([line]), []) if line.strip() else []


def _check_header(path: Path, name: str, columns: Sequence[str]) -> None:
    """Refuse a CSV whose header lacks a column every row needs: each row would only be
    rejected, as missing that field."""
    try:
        header = csv_header(path)
    except ReplaySourceError as exc:
        raise ReplaySourceError(f"{exc} (replay source {name!r})") from None
    missing = [c for c in columns if c not in header]
    if not header or not missing:
        return  # an empty file is said as one when it is read
    hint = next(
        (
            f" (it looks separated by {sep!r}; a replay reads commas)"
            for sep in ";\t|"
            if len(header) == 1 and sep in header[0]
        ),
        "",
    )
    raise ReplaySourceError(
        f"{path}: no column {', '.join(map(repr, missing))}, which replay source {name!r} "
        f"reads (its fields); the file's columns are {', '.join(map(repr, header))}{hint}"
    )


def _parquet_rows(path: Path) -> Iterator[tuple[bytes, dict[str, Any]]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ReplaySourceError(
            f"{path}: reading Parquet needs pyarrow (pip install pyarrow); or use CSV"
        ) from None
    for batch in pq.ParquetFile(path).iter_batches():
        for row in batch.to_pylist():
            yield json.dumps(row, default=str).encode(), row


class ReplaySource(StreamSource):
    """Reads a file's rows as raw records (with their fields already split)."""

    def __init__(
        self,
        name: str,
        path: Path,
        *,
        file_format: Literal["auto", "csv", "parquet"] = "auto",
        speed: float | Literal["max"] = "max",
        event_time: EventTime | None = None,
        columns: Sequence[str] = (),
    ) -> None:
        """`columns`: what every row needs (a CSV's header is checked for them at once)."""
        if not path.is_file():
            raise ReplaySourceError(f"{path}: no such file (replay source {name!r})")
        kind = file_format
        if kind == "auto":
            kind = "parquet" if path.suffix == ".parquet" else "csv"
        if kind == "csv" and columns:
            _check_header(path, name, columns)
        self.name = name
        self.path = path
        self.speed = speed
        self.event_time = event_time
        self._rows = _parquet_rows(path) if kind == "parquet" else csv_records(path)
        self._next = 0  # row number of the next row
        self._done = False
        self._pace_origin: tuple[float, int] | None = None  # (wall time, event time ns)
        self._pending: tuple[bytes, Mapping[str, Any]] | None = None

    def poll(self, max_records: int, timeout: float) -> list[RawRecord]:
        out: list[RawRecord] = []
        deadline = time.monotonic() + timeout
        while len(out) < max_records:
            item = self._pending or next(self._rows, None)
            self._pending = None
            if item is None:
                self._done = True
                break
            if self.speed != "max" and not self._due(item[1], deadline):
                self._pending = item
                break
            raw, fields = item
            out.append(RawRecord(raw, Position(self.name, "", self._next), fields=fields))
            self._next += 1
        return out

    def _due(self, fields: Mapping[str, Any], deadline: float) -> bool:
        """Wait (until deadline at most) for the row's time at `speed` x real time."""
        at = self.event_time(fields) if self.event_time else None
        if at is None:
            return True
        now = time.monotonic()
        if self._pace_origin is None:
            self._pace_origin = (now, at)
        wall0, event0 = self._pace_origin
        due = wall0 + (at - event0) / 1e9 / float(self.speed)
        if due > deadline:
            time.sleep(max(0.0, deadline - now))
            return False
        time.sleep(max(0.0, due - now))
        return True

    def commit(self, positions: Mapping[str, int]) -> None:
        """Nothing to do: a replay's position lives in the checkpoint."""

    def seek(self, positions: Mapping[str, int]) -> None:
        target = positions.get("", 0)
        while self._next < target and next(self._rows, None) is not None:
            self._next += 1

    @property
    def exhausted(self) -> bool:
        return self._done

    def close(self) -> None:
        close = getattr(self._rows, "close", None)
        if close:
            close()
