"""Checkpoints, the spill of evicted series and, in a group of replicas, a local copy of
the changelog of the partitions last held, in one SQLite file.

A checkpoint is the daemon's whole state (window, model, sinks, source positions) as one
row with its SHA-256. Evicted series' window state is spilled to the same database in
the same open transaction, and both are committed together by `save`, so after a crash
the spill and the newest checkpoint always agree (SQLite makes the commit atomic and
durable). `keep` generations are kept; a row whose checksum does not match is reported
and skipped in favour of the one before it. A checkpoint may be written on another
thread (`checkpoint_writer.py`); spills made meanwhile are held until it is committed.

The settings the state depends on (`made_for`: the model's type, horizon and layout, the
window's step and aggregation) are kept beside the checkpoints. A store told the
settings it serves refuses to load state made for others (ConfigError), which would
otherwise fail half-way into restoring it.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import pickle
import sqlite3
import time
from pathlib import Path
from typing import Any

from streamer.core.errors import ConfigError, ConfigProblem

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
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_REMEDY = (
    "set the config back, or move the checkpoint aside (or delete it) to start afresh; to "
    "keep its model, `streamer model export` it first under the config it was written with"
)


def unusable(path: Path | None, exc: Exception) -> ConfigError:
    """The error for a checkpoint whose state this config's parts cannot take (one
    written before `made_for` was kept): the part's own reason, or the key it lacks."""
    if isinstance(exc, ValueError):
        reason = str(exc)
    else:
        reason = f"its state does not fit this config's model or window ({exc!r}); {_REMEDY}"
    return ConfigError(str(path), [ConfigProblem("checkpoint.path", f"cannot continue: {reason}")])


def _open(path: Path) -> sqlite3.Connection:
    """The checkpoint database at path, made if need be; ConfigError (checkpoint.path)
    naming the file and the cause when it cannot be made, opened or read as one."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level="DEFERRED", check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
        db.commit()
    except OSError as exc:  # a parent that is a file, or one that cannot be made
        blocker = next((p for p in path.parents if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            cause = f"{blocker} is a file, not a directory"
        else:
            cause = f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)
        raise _unopenable(path, f"its directory cannot be made ({cause})") from None
    except sqlite3.Error as exc:
        if path.is_dir():
            raise _unopenable(path, "it is a directory") from None
        if "not a database" in str(exc):  # (not: a good one this user may not write)
            why = f"it is not a checkpoint database ({exc}); move it aside, or"
            raise _unopenable(path, why) from None
        raise _unopenable(path, f"it cannot be made, opened or written ({exc})") from None
    return db


def _unopenable(path: Path, why: str) -> ConfigError:
    todo = "give checkpoint.path a file in a directory this user can write"
    sep = " " if why.endswith(" or") else "; "
    return ConfigError(str(path), [ConfigProblem("checkpoint.path", f"{why}{sep}{todo}")])


class CheckpointStore:
    """Saves and restores checkpoints; also the `SpillStore` of the window."""

    def __init__(self, path: Path, keep: int = 3, made_for: dict[str, Any] | None = None) -> None:
        self.path = path
        self.keep = keep
        self.made_for = made_for  # the settings of the state it saves and loads, if known
        self._db = _open(path)
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
        if self.made_for is not None:
            self._db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('made_for', ?)",
                (json.dumps(self.made_for, sort_keys=True),),
            )
        self._db.commit()
        return int(cursor.lastrowid or 0)

    def load(self) -> dict[str, Any] | None:
        """The newest checkpoint whose checksum matches, or None if there is none;
        ConfigError if it was made for other settings than `made_for`."""
        self._check_made_for()
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

    def _check_made_for(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'made_for'").fetchone()
        if row is None or self.made_for is None:
            return
        theirs, mine = json.loads(row[0]), json.loads(json.dumps(self.made_for))
        differ = [
            f"{key}: the checkpoint's {theirs[key]!r}, the config's {mine[key]!r}"
            for key in sorted(set(theirs) & set(mine))
            if theirs[key] != mine[key]
        ]
        if differ and self._db.execute("SELECT 1 FROM checkpoint LIMIT 1").fetchone():
            message = (
                f"the checkpoint was written for other settings ({'; '.join(differ)}), so "
                f"this config cannot continue from it: {_REMEDY}"
            )
            raise ConfigError(str(self.path), [ConfigProblem("checkpoint.path", message)])

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
