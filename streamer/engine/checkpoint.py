"""Checkpoints, the spill of evicted series and, in a group of replicas, a local copy of
the changelog of the partitions last held, in one SQLite file.

A checkpoint is the daemon's whole state (window, model, sinks, source positions) as one
row with its SHA-256. Evicted series' window state is spilled to the same database in
the same open transaction, and both are committed together by `save`, so after a crash
the spill and the newest checkpoint always agree (SQLite makes the commit atomic and
durable). `keep` generations are kept; a row whose checksum does not match is reported
and skipped in favour of the one before it. A checkpoint may be written on another
thread (`checkpoint_writer.py`); spills made meanwhile are held until it is committed.
"""

from __future__ import annotations

import hashlib
import io
import logging
import pickle
import sqlite3
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Where modules whose classes a checkpoint may hold lived before `streamer/` had rooms.
_MOVED = {
    f"streamer.{old}": f"streamer.{room}.{old}"
    for room, olds in {
        "core": ("records", "errors", "durations"),
        "engine": ("window", "pipeline", "sink_writer", "checkpoint", "drift", "retrain"),
    }.items()
    for old in olds
} | {"streamer.scoring": "streamer.engine.scoring"}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(_MOVED.get(module, module), name)


def encode(state: dict[str, Any]) -> bytes:
    """A checkpoint's state as the bytes `CheckpointStore.write` stores."""
    return pickle.dumps(state, protocol=5)


def loads(blob: bytes) -> Any:
    """Unpickle checkpoint state, also one written before a module it names moved."""
    return _Unpickler(io.BytesIO(blob)).load()


_SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoint (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    sha256 TEXT NOT NULL,
    state BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS spill (series TEXT PRIMARY KEY, state BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS held (
    source TEXT NOT NULL, partition TEXT NOT NULL, since INTEGER NOT NULL, records BLOB NOT NULL,
    PRIMARY KEY (source, partition)
);
"""


class CheckpointStore:
    """Saves and restores checkpoints; also the `SpillStore` of the window."""

    def __init__(self, path: Path, keep: int = 3) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.keep = keep
        self._db = sqlite3.connect(path, isolation_level="DEFERRED", check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._db.commit()
        self._held: dict[str, bytes | None] | None = None  # see hold_spills

    def save(self, state: dict[str, Any]) -> int:
        """Write a checkpoint and commit it with every spill since the last one."""
        return self.write(encode(state))

    def write(self, blob: bytes) -> int:
        """Write an encoded checkpoint and commit it with the spills before it. May run
        on another thread while spills are held (`hold_spills`)."""
        cursor = self._db.execute(
            "INSERT INTO checkpoint (created, sha256, state) VALUES (?, ?, ?)",
            (time.time(), hashlib.sha256(blob).hexdigest(), blob),
        )
        self._db.execute(
            "DELETE FROM checkpoint WHERE id NOT IN "
            "(SELECT id FROM checkpoint ORDER BY id DESC LIMIT ?)",
            (self.keep,),
        )
        self._db.commit()
        return int(cursor.lastrowid or 0)

    def load(self) -> dict[str, Any] | None:
        """The newest checkpoint whose checksum matches, or None if there is none."""
        rows = self._db.execute("SELECT id, sha256, state FROM checkpoint ORDER BY id DESC")
        for checkpoint_id, sha256, blob in rows:
            if hashlib.sha256(blob).hexdigest() != sha256:
                log.error(
                    "checkpoint %d in %s is corrupt (checksum mismatch); skipped",
                    checkpoint_id,
                    self.path,
                )
                continue
            state: dict[str, Any] = loads(blob)
            log.info("restored checkpoint %d from %s", checkpoint_id, self.path)
            return state
        return None

    # SpillStore: uncommitted until the next save, so a crash rolls spills back with it.
    # While a checkpoint is being written on another thread, spills and their returns are
    # held in memory instead (None: gone), so that they are not committed with it: they
    # come after its state, and go into the database for the next checkpoint.

    def put(self, series: str, state: dict[str, Any]) -> None:
        blob = pickle.dumps(state, protocol=5)
        if self._held is not None:
            self._held[series] = blob
            return
        self._db.execute(
            "INSERT OR REPLACE INTO spill (series, state) VALUES (?, ?)", (series, blob)
        )

    def pop(self, series: str) -> dict[str, Any] | None:
        if self._held is not None and series in self._held:
            blob = self._held[series]
        else:
            row = self._db.execute("SELECT state FROM spill WHERE series = ?", (series,)).fetchone()
            blob = None if row is None else row[0]
        if blob is None:
            return None
        if self._held is not None:
            self._held[series] = None
        else:
            self._db.execute("DELETE FROM spill WHERE series = ?", (series,))
        state: dict[str, Any] = loads(blob)
        return state

    def hold_spills(self) -> None:
        """From now on, keep spills in memory (a checkpoint is being written)."""
        self._held = {}

    def release_spills(self) -> None:
        """Write the spills held since `hold_spills`, uncommitted: they are part of the
        next checkpoint. Call once the checkpoint being written is committed."""
        held, self._held = self._held or {}, None
        for series, blob in held.items():
            if blob is None:
                self._db.execute("DELETE FROM spill WHERE series = ?", (series,))
            else:
                self._db.execute(
                    "INSERT OR REPLACE INTO spill (series, state) VALUES (?, ?)", (series, blob)
                )

    # A local copy of partitions' changelogs (a group of replicas): the records of every
    # series as they stood at changelog offset `since`, so that a restore reads only the
    # changelog's tail from there. Correct however old: the tail brings what came after.

    def keep_partition(self, source: str, partition: str, since: int, records: Any) -> None:
        blob = pickle.dumps(records, protocol=5)
        self._db.execute(
            "INSERT OR REPLACE INTO held (source, partition, since, records) VALUES (?, ?, ?, ?)",
            (source, partition, since, blob),
        )
        self._db.commit()

    def held_partition(self, source: str, partition: str) -> tuple[int, Any] | None:
        row = self._db.execute(
            "SELECT since, records FROM held WHERE source = ? AND partition = ?",
            (source, partition),
        ).fetchone()
        return None if row is None else (int(row[0]), loads(row[1]))

    def close(self) -> None:
        """Close without committing: what was not saved is what a crash would lose."""
        self._db.rollback()
        self._db.close()
