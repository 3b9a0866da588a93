"""Checkpoints: the newest valid generation is restored, a corrupt one is skipped."""

from __future__ import annotations

import hashlib
import logging
import pickle
import sqlite3
from pathlib import Path

import pytest

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
