"""`streamer run` refuses what it cannot use in one line, without a traceback: a
checkpoint written under other model or window settings (exit 2), and output or input
files it cannot write or read (non-zero)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).parents[2]


def streamer(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamer", *args],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def readings(path: Path, steps: int = 30) -> Path:
    lines = ["sensor,value,ts"]
    lines += [f"{s},{t % 7}.5,{1_700_000_000 + 3600 * t}" for t in range(steps) for s in "ab"]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_config(folder: Path, name: str = "run.yaml", **changes: Any) -> Path:
    """A replay of `readings` through last_value into a file, with a file checkpoint;
    `changes` replace whole top-level sections."""
    config: dict[str, Any] = {
        "sources": [
            {
                "type": "replay",
                "name": "r",
                "kind": "sensor",
                "path": str(folder / "readings.csv"),
                "stop_at_end": True,
                "fields": {"series": "sensor", "value": "value", "time": "ts", "time_unit": "s"},
            }
        ],
        "window": {"step": "1h", "aggregation": "last"},
        "model": {"type": "last_value", "horizon": 3},
        "sinks": [{"type": "file", "path": str(folder / "out" / "f.lp")}],
        "checkpoint": {"enabled": True, "path": str(folder / "out" / "checkpoint.db")},
        "http": {"enabled": False},
    }
    config.update(changes)
    path = folder / name
    path.write_text(yaml.safe_dump(config))
    return path


def one_line_refusal(done: subprocess.CompletedProcess[str]) -> str:
    """The refusal on stderr: no traceback, and its last line (the log lines come first)."""
    assert "Traceback" not in done.stderr, done.stderr
    return done.stderr.strip().splitlines()[-1]


def test_a_checkpoint_of_another_model_type_horizon_or_aggregation_exits_2_saying_both(
    tmp_path: Path,
) -> None:
    readings(tmp_path / "readings.csv")
    first = streamer("run", "-c", str(write_config(tmp_path)))
    assert first.returncode == 0, first.stderr
    checkpoint = tmp_path / "out" / "checkpoint.db"
    cases: dict[str, tuple[dict[str, Any], str]] = {
        "seasonal_naive": ({"model": {"type": "seasonal_naive", "horizon": 3}}, "model.type"),
        "lstm": ({"model": {"type": "lstm", "horizon": 3}}, "model.type"),
        "horizon": ({"model": {"type": "last_value", "horizon": 4}}, "model.horizon"),
        "mean": ({"window": {"step": "1h", "aggregation": "mean"}}, "window.aggregation"),
    }
    for name, (changes, key) in cases.items():
        done = streamer("run", "-c", str(write_config(tmp_path, f"{name}.yaml", **changes)))
        assert done.returncode == 2, (name, done.stderr)
        line = one_line_refusal(done)
        assert line.startswith(f"{checkpoint}: checkpoint.path: "), line
        for said in (key, "the checkpoint's", "the config's", "move the checkpoint aside"):
            assert said in line, (name, line)
        assert "streamer model export" in line, line
    again = streamer("run", "-c", str(write_config(tmp_path)))  # the checkpoint is intact
    assert again.returncode == 0, again.stderr


def test_a_checkpoint_without_its_settings_that_does_not_fit_exits_2_with_the_reason(
    tmp_path: Path,
) -> None:
    """A checkpoint written before the settings were kept with it: the part that cannot
    take its state says why (a window of another aggregation), still in one line."""
    import sqlite3

    readings(tmp_path / "readings.csv")
    assert streamer("run", "-c", str(write_config(tmp_path))).returncode == 0
    with sqlite3.connect(tmp_path / "out" / "checkpoint.db") as db:
        db.execute("DELETE FROM meta")
    changed = write_config(tmp_path, "seasonal.yaml", model={"type": "seasonal_naive"})
    done = streamer("run", "-c", str(changed))
    assert done.returncode == 2, done.stderr
    line = one_line_refusal(done)
    assert "checkpoint.path: cannot continue" in line, line
    assert "'ring'" in line, line


def _unusable_paths(folder: Path) -> dict[str, tuple[dict[str, Any], str]]:
    """Per case: the sections that name the path, and the path said in the refusal."""
    a_file = folder / "a-file"
    a_dir = folder / "a-dir"
    out = folder / "out" / "f.lp"
    sink = {"type": "file"}
    return {
        "sink is a directory": ({"sinks": [sink | {"path": str(a_dir)}]}, str(a_dir)),
        "sink under a file": ({"sinks": [sink | {"path": f"{a_file}/f.lp"}]}, str(a_file)),
        "sink cannot be made": ({"sinks": [sink | {"path": "/proc/x"}]}, "/proc/x"),
        "dead letter is a directory": (
            {"pipeline": {"dead_letter": {"type": "file", "path": str(a_dir)}}},
            str(a_dir),
        ),
        "checkpoint is a directory": (
            {"checkpoint": {"enabled": True, "path": str(a_dir)}},
            str(a_dir),
        ),
        "checkpoint under a file": (
            {"checkpoint": {"enabled": True, "path": f"{a_file}/c.db"}},
            str(a_file),
        ),
        "checkpoint cannot be made": (
            {"checkpoint": {"path": "/proc/x"}, "sinks": [sink | {"path": str(out)}]},
            "/proc/x",
        ),
    }  # fmt: skip


@pytest.mark.parametrize("case", sorted(_unusable_paths(Path("."))))
def test_an_output_path_that_cannot_be_written_is_one_line_naming_it(
    tmp_path: Path, case: str
) -> None:
    readings(tmp_path / "readings.csv")
    (tmp_path / "a-file").write_text("in the way\n")
    (tmp_path / "a-dir").mkdir()
    changes, named = _unusable_paths(tmp_path)[case]
    done = streamer("run", "-c", str(write_config(tmp_path, **changes)))
    assert done.returncode in (1, 2), done.stderr
    line = one_line_refusal(done)
    assert named in line, line
    key = next(iter(changes)).rstrip("s")  # sink(s), pipeline (dead letter), checkpoint
    assert key.split("_")[0] in line, line


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("empty.csv", b"", "empty file, expected a header row"),
        ("broken.parquet", b"not parquet at all\n", "broken.parquet"),
        ("latin.csv", b"sensor,value,ts,caf\xe9\na,1,1700000000,x\n", "not UTF-8"),
        ("packed.csv.gz", b"sensor,value,ts\n", "packed.csv.gz"),
    ],
)
def test_a_replay_file_that_cannot_be_read_is_one_line_naming_it(
    tmp_path: Path, name: str, content: bytes, says: str
) -> None:
    data = tmp_path / name
    data.write_bytes(content)
    config = write_config(tmp_path)
    text = config.read_text().replace(str(tmp_path / "readings.csv"), str(data))
    config.write_text(text)
    done = streamer("run", "-c", str(config))
    assert done.returncode == 1, done.stderr
    line = one_line_refusal(done)
    assert says in line, line
    assert "source" in line, line


def test_a_replay_file_emptied_since_the_checkpoint_is_one_line_naming_it(
    tmp_path: Path,
) -> None:
    # The restart seeks back to the checkpoint's row, reading the file as it goes.
    data = readings(tmp_path / "readings.csv")
    config = write_config(tmp_path)
    assert streamer("run", "-c", str(config)).returncode == 0
    data.write_text("")
    done = streamer("run", "-c", str(config))
    assert done.returncode == 1, done.stderr
    line = one_line_refusal(done)
    assert "readings.csv: empty file" in line, line
    assert "source 'r'" in line, line
