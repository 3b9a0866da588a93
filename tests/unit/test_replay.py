"""Replaying files: CSV (plain or gzipped) and Parquet give the same records."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors.replay import ReplaySource, ReplaySourceError
from streamer.config.edges import build_sources
from streamer.config.file import parse_config
from streamer.core.errors import SourceError

ROWS = [
    {"ts": "2026-01-01T00:00:00Z", "sensor_id": "a", "value": "1.5"},
    {"ts": "2026-01-01T00:00:01Z", "sensor_id": "b", "value": "2.5"},
    {"ts": "2026-01-01T00:00:02Z", "sensor_id": "a", "value": "3.5"},
]


def write_csv(path: Path) -> None:
    text = "ts,sensor_id,value\n" + "".join(
        f"{r['ts']},{r['sensor_id']},{r['value']}\n" for r in ROWS
    )
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)


@pytest.mark.parametrize("name", ["events.csv", "events.csv.gz", "events.parquet"])
def test_each_row_becomes_a_record_with_its_fields_and_row_number(
    tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    if name.endswith(".parquet"):
        pq.write_table(pa.Table.from_pylist(ROWS), path)
    else:
        write_csv(path)
    source = ReplaySource("history", path)
    records = source.poll(10, 0.0)
    assert [dict(r.fields or {}) for r in records] == ROWS
    assert [r.position.offset for r in records] == [0, 1, 2]
    assert source.exhausted


def test_seek_continues_at_the_checkpointed_row(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    write_csv(path)
    source = ReplaySource("history", path)
    source.seek({"": 2})
    assert [r.position.offset for r in source.poll(10, 0.0)] == [2]


def test_a_missing_file_says_which(tmp_path: Path) -> None:
    with pytest.raises(ReplaySourceError, match=r"nope\.csv: no such file"):
        ReplaySource("history", tmp_path / "nope.csv")


@pytest.mark.parametrize(
    ("header", "said"),
    [
        ("ts;sensor_id;value", "it looks separated by ';'"),
        ("time,sensor,value", "no column 'sensor_id', 'ts'"),
    ],
)
def test_a_file_without_the_columns_its_fields_name_is_refused_at_start(
    tmp_path: Path, header: str, said: str
) -> None:
    # Such a file ran to its end rejecting every row as missing_field, and exited 0.
    path = tmp_path / "events.csv"
    path.write_text(header + "\n" + "2026-01-01T00:00:00Z;a;1.5\n")
    config = parse_config(
        f"sources: [{{type: replay, path: '{path}', fields: {{time_unit: iso8601}}}}]\n"
        f"sinks: [{{type: file, path: '{tmp_path / 'out.lp'}'}}]\n"
    )
    with pytest.raises(SourceError, match=re.escape(said)):
        build_sources(config)
