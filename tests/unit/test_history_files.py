"""History files read by `evaluate` and `train` are read line by line, as a replay
source reads them: what `run` would read of a file, they read too, and no more."""

from __future__ import annotations

from pathlib import Path

from connectors.replay import ReplaySource
from streamer.evaluation.long_file import pivot
from streamer.evaluation.options import EvaluateOptions
from streamer.evaluation.wide_replay import inspect

HOUR = 3_600_000_000_000


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
