"""The README's main-job command: the bundled demo runs end to end with no servers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from connectors.line_protocol import parse_line

REPO = Path(__file__).parents[2]


def test_the_demo_replays_the_bundled_data_and_prints_a_summary(tmp_path: Path) -> None:
    forecasts = tmp_path / "forecasts.lp"
    env = {
        **os.environ,
        # The demo's own config, with its outputs moved out of the work tree.
        "STREAMER__SINKS__0__PATH": str(forecasts),
        "STREAMER__PIPELINE__DEAD_LETTER__PATH": str(tmp_path / "dead.jsonl"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "streamer.cli", "run", "-c", "config/demo.yaml"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    summary = done.stdout.strip().splitlines()[-1]
    assert summary.startswith("done: 12570 events read, 0 rejected")
    assert "10 series" in summary
    assert str(forecasts) in summary
    points = [parse_line(line) for line in forecasts.read_text().splitlines()]
    symbols = {p.tags["series"] for p in points}
    assert len(symbols) == 10
    measurements = {p.measurement for p in points}
    assert (
        {"observed", "forecast", "forecast_error"}
        <= measurements
        <= {
            "observed",
            "forecast",
            "forecast_error",
            "drift",
        }
    )
    # Intervals appear once each series has enough errors to calibrate them.
    assert any("lower" in p.fields for p in points if p.measurement == "forecast")
    assert "events" in done.stderr  # progress lines


def test_a_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("sources: []\nsinks: []\nwindow:\n  step: soon\n")
    done = subprocess.run(
        [sys.executable, "-m", "streamer.cli", "run", "-c", str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "window.step" in done.stderr
    assert "sources" in done.stderr
