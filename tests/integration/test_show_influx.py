"""`streamer show` reads the same table from a real InfluxDB as from the file sink that
got the same outputs, and one series step by step."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import yaml

from tests.integration.conftest import Services

REPO = Path(__file__).parents[2]
NAMES, STEPS = ["line-a", "line-b", "line c"], 60


def streamer(token: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamer", *args],
        cwd=REPO, env={**os.environ, "SHOW_TOKEN": token},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_show_reads_the_same_from_influxdb_as_from_the_file_sink(
    services: Services, influx_bucket: str, tmp_path: Path
) -> None:
    values = np.round(np.random.default_rng(8).normal(50, 5, (len(NAMES), STEPS)), 2)
    data = tmp_path / "readings.csv"
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    with data.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["time", "sensor", "value"])
        for t in range(STEPS):
            at = (t0 + timedelta(hours=t)).isoformat()
            out.writerows([at, name, values[k, t]] for k, name in enumerate(NAMES))
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "sources": [
                    {
                        "type": "replay",
                        "path": str(data),
                        "stop_at_end": True,
                        "fields": {
                            "series": "sensor", "value": "value", "time": "time",
                            "time_unit": "iso8601",
                        },
                    }
                ],
                "window": {"step": "1h"},
                "model": {"type": "seasonal_naive", "horizon": 3, "season_length": 4},
                "intervals": {"window": 10},
                "sinks": [
                    {
                        "type": "influxdb", "name": "influx", "url": services.influx_url,
                        "org": services.influx_org, "bucket": influx_bucket,
                        "token": "${SHOW_TOKEN}",
                    },
                    {"type": "file", "name": "file", "path": str(tmp_path / "out.lp")},
                ],
                "checkpoint": {"enabled": False},
                "http": {"enabled": False},
            }
        )
    )  # fmt: skip
    token = services.influx_token
    assert streamer(token, "run", "-c", str(config)).returncode == 0

    tables = {}
    for sink in ("influx", "file"):
        done = streamer(token, "show", "-c", str(config), "--sink", sink, "--errors", "10")
        assert done.returncode == 0, done.stderr
        tables[sink] = done.stdout.splitlines()[1:]
    assert len(tables["file"]) == 1 + len(NAMES)
    assert tables["influx"] == tables["file"]

    steps = {}
    for sink in ("influx", "file"):
        done = streamer(
            token, "show", "-c", str(config), "--sink", sink, "--series", "line c",
            "--horizon", "2", "--last", "5",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        steps[sink] = done.stdout
    assert steps["influx"] == steps["file"]
    assert len(steps["file"].splitlines()) == 2 + 5 + 2  # title, header, 5 steps, 2 ahead

    refused = streamer("wrong-token", "show", "-c", str(config), "--sink", "influx")
    assert refused.returncode == 1
    assert "refused the query: 401" in refused.stderr
