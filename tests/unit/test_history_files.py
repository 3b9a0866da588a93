"""History files read by `evaluate` and `train` are read line by line, as a replay
source reads them: what `run` would read of a file, they read too, and no more."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.replay import ReplaySource
from streamer.evaluation.long_file import pivot
from streamer.evaluation.options import EvaluateOptions
from streamer.evaluation.wide_replay import inspect
from streamer.service.cli import main

HOUR = 3_600_000_000_000
ROWS = b"".join(b"2020-01-%02dT%02d:00:00Z,%d.5\n" % (1 + i // 24, i % 24, i) for i in range(40))


def a_file_with_a_stray_quote(path: Path, rows: int = 100) -> Path:
    lines = ["time,x"]
    for i in range(rows):
        value = '"12.5' if i == 10 else f"{i}.0"  # a cell that opens a quote, never closed
        lines.append(f"2020-01-{1 + i // 24:02d}T{i % 24:02d}:00:00,{value}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_evaluate_counts_every_line_past_a_stray_quote_as_a_replay_does(tmp_path: Path) -> None:
    # A CSV reader that lets a quoted field span lines took the other 89 rows as one
    # cell: evaluate and train said "over 11 rows" and trained on nothing.
    path = a_file_with_a_stray_quote(tmp_path / "wide.csv")
    facts = inspect(
        EvaluateOptions(data=path, time_col="time", targets=["x"], step_ns=HOUR, horizon=2)
    )
    replay = ReplaySource("history", path)
    assert facts.rows == len(replay.poll(1_000, 0.0)) == 100


def test_train_long_form_keeps_every_reading_past_a_stray_quote(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    lines = ["time,series,value"]
    for i in range(50):
        for name in ("a", "b"):
            value = '"7' if (i, name) == (3, "a") else str(i)
            lines.append(f"2020-01-01T{i % 24:02d}:{i // 24:02d}:00,{name},{value}")
    path.write_text("\n".join(lines) + "\n")
    wide = tmp_path / "wide.csv"
    assert pivot(path, "time", "series", "value", wide) == ["a", "b"]
    assert len(wide.read_text().splitlines()) == 1 + 50


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("latin.csv", b"time,x\n2020-01-01T00:00:00Z,caf\xe9\n" * 1 + ROWS, None),
        ("packed.csv.gz", b"time,x\n" + ROWS, "packed.csv.gz: cannot be read"),
        ("header.csv", b"time,caf\xe9\n" + ROWS, "header.csv: its header is not UTF-8"),
    ],
)
def test_a_file_evaluate_cannot_read_is_one_line_or_a_rejected_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes, says: str | None
) -> None:
    # These ended in UnicodeDecodeError and BadGzipFile tracebacks; `run` skips a row
    # it cannot decode, and evaluate now does too.
    path = tmp_path / name
    path.write_bytes(content)
    args = ["evaluate", "--data", str(path), "--time-col", "time", "--targets", "x"]
    code = main([*args, "--step", "1h", "--horizon", "2", "--models", "last_value"])
    err = capsys.readouterr().err
    if says is None:
        assert code == 0, err
    else:
        assert code == 2, err
        assert says in err, err
