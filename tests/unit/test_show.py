"""`streamer show` reads back what a file sink holds, in either format: each series'
latest value, next forecast, interval and recent error, one series step by step, and a
plot with dates."""

from __future__ import annotations

import csv
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from streamer.evaluation.report import pyplot
from streamer.service import show

REPO = Path(__file__).parents[2]
NAMES, STEPS, ERRORS = ["pump-1", "pump-2", "tank/level"], 80, 20
T0 = datetime(2024, 3, 1, tzinfo=UTC)


def streamer(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamer", *args],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A run of the last-value model over a file into two file sinks, one per format."""
    folder = tmp_path_factory.mktemp("show")
    values = np.round(np.random.default_rng(4).normal(10, 2, (len(NAMES), STEPS)), 3)
    data = folder / "readings.csv"
    with data.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["time", "sensor", "value"])
        for t in range(STEPS):
            at = (T0 + timedelta(minutes=t)).isoformat()
            out.writerows([at, name, values[k, t]] for k, name in enumerate(NAMES))
    config = {
        "sources": [
            {
                "type": "replay",
                "path": str(data),
                "stop_at_end": True,
                "fields": {
                    "series": "sensor",
                    "value": "value",
                    "time": "time",
                    "time_unit": "iso8601",
                },
            }
        ],
        "window": {"step": "1m"},
        "model": {"type": "last_value", "horizon": 2},
        "intervals": {"window": 10, "coverage": 0.8},
        "sinks": [
            {"type": "file", "name": "lines", "path": str(folder / "out.lp")},
            {"type": "file", "name": "table", "path": str(folder / "out.csv"), "format": "csv"},
        ],
        "checkpoint": {"enabled": False},
        "http": {"enabled": False},
    }
    path = folder / "show.yaml"
    path.write_text(yaml.safe_dump(config))
    done = streamer("run", "-c", str(path))
    assert done.returncode == 0, done.stderr
    return path, values


@pytest.mark.parametrize("sink", ["lines", "table"])
def test_the_table_has_each_series_latest_value_forecast_and_recent_error(
    ran: tuple[Path, np.ndarray], sink: str
) -> None:
    config, values = ran
    done = streamer("show", "-c", str(config), "--sink", sink, "--errors", str(ERRORS))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].endswith(": 3 series")
    last = (T0 + timedelta(minutes=STEPS - 1)).strftime("%Y-%m-%d %H:%M:%S")
    nxt = (T0 + timedelta(minutes=STEPS)).strftime("%Y-%m-%d %H:%M:%S")
    for k, name in enumerate(NAMES):
        (row,) = [line.split() for line in lines[2:] if line.split()[0] == name]
        latest = values[k, -1]
        # The last value forecasts the latest value; its recent error is the mean step.
        mae = np.abs(np.diff(values[k]))[-ERRORS:].mean()
        assert float(row[1]) == pytest.approx(latest, rel=1e-4)
        assert f"{row[2]} {row[3]}" == last
        assert float(row[4]) == pytest.approx(latest, rel=1e-4)
        lower, upper = (float(x) for x in " ".join(row[5:7]).strip("[]").split(", "))
        assert lower < latest < upper
        assert f"{row[7]} {row[8]}" == nxt
        assert float(row[9]) == pytest.approx(mae, rel=1e-4)
        assert row[10] == f"({ERRORS})"
        assert row[11] == "last_value"


def test_one_series_step_by_step_and_as_a_plot(
    ran: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    config, values = ran
    done = streamer("show", "-c", str(config), "--series", "tank/level", "--last", "3")
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()[2:]]
    assert [float(r[2]) for r in rows[:3]] == pytest.approx(values[2, -3:].tolist())
    assert rows[-1][2] == "-"  # the next step: a forecast, no value yet
    assert float(rows[-1][3]) == pytest.approx(values[2, -1])

    png = tmp_path / "level.png"
    drawn = streamer("show", "-c", str(config), "--series", "tank/level", "--plot", str(png))
    assert drawn.returncode == 0, drawn.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    unknown = streamer("show", "-c", str(config), "--series", "nope")
    assert unknown.returncode == 1
    assert "holds nothing of series 'nope'" in unknown.stderr


class _OpenFigures:
    """matplotlib's pyplot, but each figure stays open to be looked at."""

    def __init__(self) -> None:
        self.plt = pyplot()
        self.axes: list[Any] = []

    def subplots(self, **kwargs: Any) -> tuple[Any, Any]:
        fig, ax = self.plt.subplots(**kwargs)
        self.axes.append(ax)
        return fig, ax

    def close(self, fig: Any) -> None:
        pass


def test_the_plot_draws_nothing_across_a_gap(tmp_path: Path) -> None:
    """A restart or an outage leaves steps the sink never got: the lines and the band
    stop at its start and go on at its end, and do not join across it."""
    step = 10**9
    before, after = range(0, 5 * step, step), range(60 * step, 65 * step, step)
    t = show.Trace("s", 1)
    for k in [*before, *after]:
        t.observed[k] = float(k // step)
        t.forecast[k + step] = {"yhat": k / step + 0.5, "lower": k / step, "upper": k / step + 1}
    figures = _OpenFigures()
    assert show.plot(t, tmp_path / "s.png", None, figures) == 10
    (ax,) = figures.axes
    for line in ax.lines:  # actual, forecast: one NaN each, between the two runs of steps
        y = np.asarray(line.get_ydata(), dtype=float)
        (gap,) = np.flatnonzero(np.isnan(y))
        assert np.all(np.diff(y[:gap]) > 0)
        assert np.all(np.diff(y[gap + 1 :]) > 0)
        assert y[gap - 1] < y[gap + 1]
    (band,) = ax.collections
    assert len(band.get_paths()) == 2  # two pieces of interval band
    figures.plt.close("all")


def test_output_cut_short_by_its_reader_ends_quietly(ran: tuple[Path, np.ndarray]) -> None:
    """`streamer show | head`: the reader is gone before the table is printed."""
    config, _ = ran
    command = [sys.executable, "-m", "streamer", "show", "-c", str(config), "--series", "pump-1"]
    with subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as shown:
        assert shown.stdout is not None
        assert shown.stderr is not None
        shown.stdout.close()
        err = shown.stderr.read()
        assert shown.wait(timeout=120) == 141
    assert err == ""


def test_a_file_sink_path_that_is_a_directory_is_one_line_naming_it(
    ran: tuple[Path, np.ndarray], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from streamer.service.cli import main

    config, _ = ran
    moved = yaml.safe_load(config.read_text())
    moved["sinks"] = [{"type": "file", "path": str(tmp_path)}]
    path = tmp_path / "show.yaml"
    path.write_text(yaml.safe_dump(moved))
    assert main(["show", "-c", str(path)]) == 1
    err = capsys.readouterr().err
    assert err == f"streamer show: {tmp_path} is a directory; give the path of a file\n"


def test_a_plot_in_a_missing_directory_is_refused_before_reading(
    ran: tuple[Path, np.ndarray], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from streamer.service.cli import main

    config, _ = ran
    png = tmp_path / "nodir" / "p.png"
    assert main(["show", "-c", str(config), "--series", "pump-1", "--plot", str(png)]) == 2
    err = capsys.readouterr().err
    assert f"--plot {png}: there is no directory {png.parent}" in err


@given(st.floats(min_value=-1e15, max_value=1e15, exclude_min=True, exclude_max=True))
def test_a_value_is_shown_to_its_hundredths_whatever_its_size(value: float) -> None:
    # A series near a million was shown as 1e+06 in every column: latest, forecast and
    # interval alike.
    text = show._num(value)
    assert "e" not in text or abs(value) < 1e-4
    assert abs(float(text) - value) <= max(0.005, abs(value) * 1e-4)
