"""`streamer train`: a warm start from history. The trained checkpoint is what
`streamer run` starts from, so the LSTM forecasts from the first live step instead of a
baseline, and an existing checkpoint is never overwritten unasked."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from connectors.line_protocol import parse_line
from tests.helpers import seasonal

REPO = Path(__file__).parents[2]
SERIES, HISTORY, LIVE, SEASON = 4, 480, 48, 24
NAMES = [f"plant-{k}" for k in range(SERIES)]
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def write_files(tmp_path: Path) -> tuple[Path, Path]:
    """The history as a wide CSV (a column per series) and what follows it live, one
    reading a row, as a replay source reads it."""
    values = seasonal(SERIES, HISTORY + LIVE, SEASON, seed=3) * 10 + 50
    history, live = tmp_path / "history.csv", tmp_path / "live.csv"
    with history.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["time", *NAMES])
        for t in range(HISTORY):
            at = (T0 + timedelta(hours=t)).isoformat()
            out.writerow([at, *(f"{v:.4f}" for v in values[:, t])])
    with live.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["time", "sensor_id", "value"])
        for t in range(HISTORY, HISTORY + LIVE):
            at = (T0 + timedelta(hours=t)).isoformat()
            out.writerows([at, name, f"{values[k, t]:.4f}"] for k, name in enumerate(NAMES))
    return history, live


def config(tmp_path: Path, live: Path, state: str) -> Path:
    path = tmp_path / f"{state}.yaml"
    text = {
        "sources": [
            {
                "type": "replay",
                "kind": "sensor",
                "path": str(live),
                "stop_at_end": True,
                "fields": {
                    "series": "sensor_id",
                    "value": "value",
                    "time": "time",
                    "time_unit": "iso8601",
                },
            }
        ],
        "window": {"step": "1h"},
        "model": {
            "horizon": 3,
            "hidden_size": 8,
            "season_length": SEASON,
            "lags": 4,
            "min_train_steps": 1000,
            "serve_if": "trained",
        },
        "retrain": {"schedule": "1h", "window": 32, "burn_in": 8},
        "sinks": [{"type": "file", "path": str(tmp_path / f"{state}.lp")}],
        "checkpoint": {"path": str(tmp_path / f"{state}.db")},
        "http": {"enabled": False},
    }
    path.write_text(yaml.safe_dump(text))
    return path


def streamer(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamer", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def forecast_models(path: Path) -> list[tuple[str, int]]:
    """(model tag, version) of each forecast point, in the order written."""
    points = [parse_line(line) for line in path.read_text().splitlines()]
    return [
        (p.tags["model"], int(p.fields.get("version", 0)))
        for p in points
        if p.measurement == "forecast"
    ]


def test_a_trained_checkpoint_has_the_lstm_forecast_from_the_first_live_step(
    tmp_path: Path,
) -> None:
    history, live = write_files(tmp_path)
    warm, cold = config(tmp_path, live, "warm"), config(tmp_path, live, "cold")
    train = [
        "train", "-c", str(warm), "--data", str(history), "--time-col", "time",
        "--targets", ",".join(NAMES), "--epochs", "5",
    ]  # fmt: skip
    done = streamer(*train)
    assert done.returncode == 0, done.stderr
    assert re.search(r"held-out MAE [\d.]+ \(last value: [\d.]+\) over \d+ forecasts", done.stdout)
    assert "lstm version " in done.stdout
    assert f"trained on {HISTORY} rows of {SERIES} series" in done.stdout
    assert "rows/s" in done.stderr  # the progress bar

    for run in (warm, cold):
        ran = streamer("run", "-c", str(run))
        assert ran.returncode == 0, ran.stderr
        assert f"{SERIES * LIVE} events read, 0 rejected" in ran.stdout
    served = forecast_models(tmp_path / "warm.lp")
    assert len(served) >= SERIES * (LIVE - 1)
    assert {model for model, _ in served} == {"lstm"}
    assert min(version for _, version in served) >= 1
    # Without the warm start, a baseline answers until the LSTM has trained live.
    assert forecast_models(tmp_path / "cold.lp")[0][0] == "baseline"

    again = streamer(*train)
    assert again.returncode == 2
    assert "already holds a checkpoint" in again.stderr
    assert "--replace" in again.stderr
