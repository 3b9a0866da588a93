"""`streamer train --from-influx` learns from what a deployment wrote to a real
InfluxDB: exactly what the same history gives from a file."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS

from tests.helpers import seasonal
from tests.integration.conftest import Services

REPO = Path(__file__).parents[2]
NAMES, STEPS, T0 = ["plant-0", "plant-1", "plant-2/temp"], 200, datetime(2024, 1, 1, tzinfo=UTC)
GAP = range(50, 54)  # plant-1 is quiet for these steps


def history() -> list[tuple[datetime, list[float | None]]]:
    values = seasonal(len(NAMES), STEPS, 24, seed=5) * 3 + 20
    return [
        (
            T0 + timedelta(hours=t),
            [None if (k == 1 and t in GAP) else round(float(values[k, t]), 4) for k in range(3)],
        )
        for t in range(STEPS)
    ]


def config(services: Services, bucket: str, folder: Path, name: str) -> Path:
    path = folder / f"{name}.yaml"
    text = {
        "sources": [{"type": "kafka", "topics": ["plant"], "bootstrap_servers": "127.0.0.1:9092"}],
        "window": {"step": "1h"},
        "model": {"horizon": 2, "hidden_size": 4, "lags": 2, "season_length": 24},
        "retrain": {"window": 16, "burn_in": 4},
        "sinks": [
            {
                "type": "influxdb",
                "url": services.influx_url,
                "org": services.influx_org,
                "bucket": bucket,
                "token": "${TRAIN_TOKEN}",
            }
        ],
        "checkpoint": {"path": str(folder / f"{name}.db")},
    }
    path.write_text(yaml.safe_dump(text))
    return path


def train(path: Path, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamer", "train", "-c", str(path), "--epochs", "2", *args],
        cwd=REPO,
        env={**os.environ, "TRAIN_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def held_out(stdout: str) -> str:
    found = re.search(r"held-out MAE .*", stdout)
    assert found, stdout
    return found.group(0)


def test_training_from_influxdb_equals_training_from_the_same_history_in_a_file(
    services: Services, influx_client: InfluxDBClient, influx_bucket: str, tmp_path: Path
) -> None:
    rows = history()
    lines = [
        f"observed,kind=sensor,series={name} value={v} {int(at.timestamp())}000000000"
        for at, values in rows
        for name, v in zip(NAMES, values, strict=True)
        if v is not None
    ]
    # Neither another measurement nor a point after --stop is history.
    lines.append(f"forecast,series=plant-0,horizon=1 yhat=1.0 {int(T0.timestamp())}000000000")
    lines.append(
        f"observed,series=plant-0 value=9.0 {int(datetime(2025, 1, 1).timestamp())}000000000"
    )
    influx_client.write_api(write_options=SYNCHRONOUS).write(influx_bucket, record=lines)

    file = tmp_path / "history.csv"
    with file.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["time", *NAMES])
        out.writerows(
            [at.isoformat(), *("" if v is None else repr(v) for v in values)] for at, values in rows
        )
    token = services.influx_token
    from_file = train(
        config(services, influx_bucket, tmp_path, "file"), token,
        "--data", str(file), "--time-col", "time", "--targets", ",".join(NAMES),
    )  # fmt: skip
    assert from_file.returncode == 0, from_file.stderr
    window = ("--start", "2024-01-01T00:00:00Z", "--stop", "2024-06-01T00:00:00Z")
    from_influx = train(
        config(services, influx_bucket, tmp_path, "influx"), token, "--from-influx", *window
    )
    assert from_influx.returncode == 0, from_influx.stderr
    assert "read 3 series from InfluxDB" in from_influx.stderr
    assert f"trained on {STEPS} rows of 3 series" in from_influx.stdout
    assert held_out(from_influx.stdout) == held_out(from_file.stdout)

    refused = train(
        config(services, influx_bucket, tmp_path, "refused"), "wrong", "--from-influx", *window
    )
    assert refused.returncode == 2
    assert (
        f"InfluxDB at {services.influx_url} bucket {influx_bucket} refused the query: 401"
        in refused.stderr
    )
    empty = train(
        config(services, influx_bucket, tmp_path, "empty"), token, "--from-influx",
        "--start", "2023-01-01T00:00:00Z", "--stop", "2023-02-01T00:00:00Z",
    )  # fmt: skip
    assert empty.returncode == 2
    assert "holds no observed.value points with a 'series' tag" in empty.stderr
