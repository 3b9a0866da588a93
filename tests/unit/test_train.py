"""`streamer train`: a warm start from history. The trained checkpoint is what
`streamer run` starts from, so the LSTM forecasts from the first live step instead of a
baseline, and an existing checkpoint is never overwritten unasked."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import pickle
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
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


@dataclass(frozen=True)
class Trained:
    folder: Path
    history: Path
    live: Path
    train: list[str]  # the command that trained `warm`
    done: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    folder = tmp_path_factory.mktemp("train")
    history, live = write_files(folder)
    warm = config(folder, live, "warm")
    train = [
        "train", "-c", str(warm), "--data", str(history), "--time-col", "time",
        "--targets", ",".join(NAMES), "--epochs", "5",
    ]  # fmt: skip
    return Trained(folder, history, live, train, streamer(*train))


def test_a_trained_checkpoint_has_the_lstm_forecast_from_the_first_live_step(
    trained: Trained,
) -> None:
    done, tmp_path = trained.done, trained.folder
    assert done.returncode == 0, done.stderr
    assert re.search(r"held-out MAE [\d.]+ \(last value: [\d.]+\) over \d+ forecasts", done.stdout)
    assert "lstm version " in done.stdout
    assert f"trained on {HISTORY} rows of {SERIES} series" in done.stdout
    assert "rows/s" in done.stderr  # the progress bar

    warm, cold = tmp_path / "warm.yaml", config(tmp_path, trained.live, "cold")
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

    again = streamer(*trained.train)
    assert again.returncode == 2
    assert "already holds a checkpoint" in again.stderr
    assert "--replace" in again.stderr


def test_an_exported_model_forecasts_the_same_in_another_deployment(trained: Trained) -> None:
    assert trained.done.returncode == 0, trained.done.stderr
    folder, model = trained.folder, trained.folder / "plant.model"
    source = config(folder, trained.live, "source")  # trained as `warm` was
    retrained = streamer(*[str(source) if a.endswith("warm.yaml") else a for a in trained.train])
    assert retrained.returncode == 0, retrained.stderr
    exported = streamer("model", "export", "-c", str(source), str(model))
    assert exported.returncode == 0, exported.stderr

    other = config(folder, trained.live, "other")
    imported = streamer("model", "import", "-c", str(other), str(model))
    assert imported.returncode == 0, imported.stderr
    for deployment in (source, other):
        assert streamer("run", "-c", str(deployment)).returncode == 0
    source_points = (folder / "source.lp").read_text().splitlines()
    other_points = (folder / "other.lp").read_text().splitlines()
    forecasts = [p for p in source_points if p.startswith("forecast,")]
    assert forecasts
    assert [p for p in other_points if p.startswith("forecast,")] == forecasts


def test_a_model_for_another_setup_or_not_a_model_is_refused_saying_why(
    trained: Trained,
) -> None:
    folder, model = trained.folder, trained.folder / "refused.model"
    assert streamer("model", "export", "-c", str(folder / "warm.yaml"), str(model)).returncode == 0
    longer = yaml.safe_load((folder / "warm.yaml").read_text())
    longer["model"]["horizon"] = 6
    longer["checkpoint"]["path"] = str(folder / "longer.db")
    (folder / "longer.yaml").write_text(yaml.safe_dump(longer))
    refused = streamer("model", "import", "-c", str(folder / "longer.yaml"), str(model))
    assert refused.returncode == 2
    assert "model.horizon: the file's model has 3, this config 6" in refused.stderr
    assert not (folder / "longer.db").exists()

    # Bytes that would run code when unpickled are refused before anything runs.
    header, _, _ = model.read_bytes().partition(b"\n")
    hostile = pickle.dumps(os.system)
    meta = json.loads(header.split(b" ", 1)[1])
    meta["sha256"] = hashlib.sha256(hostile).hexdigest()
    bad = folder / "hostile.model"
    bad.write_bytes(b"streamer-model " + json.dumps(meta).encode() + b"\n" + hostile)
    attempt = streamer("model", "import", "-c", str(folder / "longer.yaml"), str(bad))
    assert attempt.returncode == 2
    assert "names posix.system, which a model file may not" in attempt.stderr


def test_a_trained_checkpoint_under_another_model_setup_is_refused_by_run_and_export(
    trained: Trained,
) -> None:
    """The settings it was trained for are kept with the checkpoint: a config changed
    since is told what differs, and neither continues from it nor exports it as its own."""
    assert trained.done.returncode == 0, trained.done.stderr
    folder = trained.folder
    changed = yaml.safe_load((folder / "warm.yaml").read_text())
    changed["model"]["horizon"] = 5
    (folder / "changed.yaml").write_text(yaml.safe_dump(changed))
    said = "model.horizon: the checkpoint's 3, the config's 5"
    ran = streamer("run", "-c", str(folder / "changed.yaml"))
    assert ran.returncode == 2, ran.stderr
    assert said in ran.stderr
    assert "Traceback" not in ran.stderr
    exported = streamer("model", "export", "-c", str(folder / "changed.yaml"), str(folder / "x"))
    assert exported.returncode == 2, exported.stderr
    assert said in exported.stderr
    assert not (folder / "x").exists()


def test_a_long_file_of_one_reading_a_line_trains_as_its_wide_form_does(
    trained: Trained,
) -> None:
    assert trained.done.returncode == 0, trained.done.stderr
    folder = trained.folder
    long = folder / "history-long.csv"
    with trained.history.open() as f, long.open("w", newline="") as out:
        rows = list(csv.DictReader(f))
        writer = csv.writer(out)
        writer.writerow(["sensor_id", "value", "time"])
        for row in reversed(rows):  # in any order
            writer.writerows([name, row[name], row["time"]] for name in NAMES)
    other = config(folder, trained.live, "long")
    done = streamer(
        "train", "-c", str(other), "--data", str(long), "--time-col", "time",
        "--series-col", "sensor_id", "--value-col", "value", "--epochs", "5",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"read {SERIES} series from {long}" in done.stderr

    def held_out(text: str) -> str:
        return next(line for line in text.splitlines() if line.startswith("held-out MAE"))

    assert held_out(done.stdout) == held_out(trained.done.stdout)


def test_a_history_too_short_to_train_on_writes_nothing_and_says_why(tmp_path: Path) -> None:
    # 20 hourly rows give no 32-step window: train used to write the untrained net as
    # "trained on 20 rows" (and a 5-row file as "held-out MAE nan").
    history, live = write_files(tmp_path)
    short = tmp_path / "short.csv"
    short.write_text("".join(history.read_text().splitlines(keepends=True)[:21]))
    done = streamer(
        "train", "-c", str(config(tmp_path, live, "short")), "--data", str(short),
        "--time-col", "time", "--targets", ",".join(NAMES), "--epochs", "1",
    )  # fmt: skip
    assert done.returncode == 2, done.stdout
    assert "the net was not trained, so no checkpoint was written" in done.stderr
    assert "retrain.window (32)" in done.stderr
    assert "the file gave 20 rows" in done.stderr
    assert not (tmp_path / "short.db").exists()


def test_a_training_that_fails_is_said_as_a_failure_not_as_a_short_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from streamer.engine.retrain import Retrainer
    from streamer.service.cli import main

    def fail(self: Retrainer, job: object) -> None:
        raise MemoryError("out of memory while training")

    monkeypatch.setattr(Retrainer, "_fit", fail)
    history, live = write_files(tmp_path)
    code = main(
        ["train", "-c", str(config(tmp_path, live, "failing")), "--data", str(history),
         "--time-col", "time", "--targets", ",".join(NAMES), "--epochs", "1"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2, err
    assert "the net was not trained, so no checkpoint was written: its training failed" in err
    assert not (tmp_path / "failing.db").exists()
