"""Checkpoints: the newest valid generation is restored, a corrupt one is skipped."""

from __future__ import annotations

import hashlib
import logging
import pickle
import sqlite3
from pathlib import Path

import pytest

from streamer.core.errors import ConfigError
from streamer.engine.checkpoint import CheckpointStore
from streamer.engine.drift import Detection


def test_a_corrupt_checkpoint_is_reported_and_the_one_before_it_restored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "checkpoint.db"
    store = CheckpointStore(path, keep=2)
    for generation in range(4):
        store.save({"generation": generation})
    store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM checkpoint").fetchone() == (2,)
        newest = db.execute("SELECT MAX(id) FROM checkpoint").fetchone()[0]
        # Flip a byte of the newest state, as a torn or damaged write would.
        blob = bytearray(
            db.execute("SELECT state FROM checkpoint WHERE id = ?", (newest,)).fetchone()[0]
        )
        blob[len(blob) // 2] ^= 0xFF
        db.execute("UPDATE checkpoint SET state = ? WHERE id = ?", (bytes(blob), newest))

    with caplog.at_level(logging.ERROR):
        state = CheckpointStore(path).load()
    assert state == {"generation": 2}
    assert f"checkpoint {newest} in {path} is corrupt" in caplog.text


def test_a_checkpoint_written_before_the_engine_moved_is_restored(tmp_path: Path) -> None:
    """Classes pickled under their old module path (`streamer.drift`) still load."""
    cause = Detection("AAPL", 3, "input", "page_hinkley", 2.5, 1_700_000_000_000_000_000)
    old = pickle.dumps({"cause": cause}, protocol=0).replace(
        b"streamer.engine.drift", b"streamer.drift"
    )
    assert b"streamer.engine" not in old
    path = tmp_path / "checkpoint.db"
    with sqlite3.connect(path) as db:
        CheckpointStore(path).close()
        db.execute(
            "INSERT INTO checkpoint (created, sha256, state) VALUES (0, ?, ?)",
            (hashlib.sha256(old).hexdigest(), old),
        )
    assert CheckpointStore(path).load() == {"cause": cause}


def test_a_store_refuses_a_checkpoint_made_for_other_settings_naming_each(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.db"
    made_for = {"model.type": "last_value", "model.horizon": 3, "window.step": "1h"}
    store = CheckpointStore(path, made_for=made_for)
    store.save({"generation": 0})
    store.close()
    assert CheckpointStore(path, made_for=made_for).load() == {"generation": 0}
    assert CheckpointStore(path).load() == {"generation": 0}  # (settings not known: no check)
    other = made_for | {"model.type": "seasonal_naive", "model.horizon": 5}
    with pytest.raises(ConfigError) as refused:
        CheckpointStore(path, made_for=other).load()
    (problem,) = refused.value.problems
    assert refused.value.source == str(path)
    assert problem.path == "checkpoint.path"
    assert "model.horizon: the checkpoint's 3, the config's 5" in problem.message
    assert "model.type: the checkpoint's 'last_value', the config's 'seasonal_naive'" in (
        problem.message
    )
    assert "window.step" not in problem.message


@pytest.mark.parametrize("where", ["a directory", "under a file", "not a database"])
def test_a_checkpoint_path_that_cannot_be_a_database_is_a_config_error_naming_it(
    tmp_path: Path, where: str
) -> None:
    (tmp_path / "a-file").write_text("in the way\n")
    path = {
        "a directory": tmp_path,
        "under a file": tmp_path / "a-file" / "sub" / "checkpoint.db",
        "not a database": tmp_path / "a-file",
    }[where]
    with pytest.raises(ConfigError) as refused:
        CheckpointStore(path)
    (problem,) = refused.value.problems
    assert refused.value.source == str(path)
    assert problem.path == "checkpoint.path"
    said = {
        "a directory": "is a directory",
        "under a file": f"({tmp_path / 'a-file'} is a file, not a directory)",  # not a-file/sub
    }
    assert said.get(where, "is not a checkpoint database") in problem.message
