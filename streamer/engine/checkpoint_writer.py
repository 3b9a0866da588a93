"""Checkpoints written on a thread of their own, so that the stream goes on meanwhile.

The pipeline thread takes the state (copies of it) and encodes it; hashing the bytes
and committing them to SQLite, most of a checkpoint's time with many series, happen on
the writer's thread. Until that commit, spills are held in memory (they come after the
state being written) and the sources' positions are not committed: `poll`, on the
pipeline thread, finds the write done and only then calls `committed`, which commits
the positions the checkpoint stands for. A crash before that leaves the previous
checkpoint and the previous positions, which agree. One write is in flight at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from streamer.engine.checkpoint import CheckpointStore, encode


class CheckpointWriter:
    """Writes one checkpoint at a time in the background (see module doc)."""

    def __init__(self, store: CheckpointStore) -> None:
        self.store = store
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self._committed: Callable[[], None] = lambda: None

    @property
    def busy(self) -> bool:
        """Whether a checkpoint is being written (or written and not yet polled)."""
        return self._thread is not None

    def start(self, state: dict[str, Any], committed: Callable[[], None]) -> None:
        """Encode `state` here and write it on the writer's thread; `committed` runs on
        the caller's thread, from `poll` or `wait`, once it is durable."""
        if self._thread is not None:
            raise RuntimeError("a checkpoint is already being written")
        blob = encode(state)
        self.store.hold_spills()
        self._committed = committed
        self._thread = threading.Thread(
            target=self._write, args=(blob,), name="checkpoint-writer", daemon=True
        )
        self._thread.start()

    def poll(self) -> bool:
        """If the write in flight is done: release the spills, call `committed` and
        return True. A write that failed raises here."""
        if self._thread is None or self._thread.is_alive():
            return False
        return self.wait()

    def wait(self) -> bool:
        """Wait for the write in flight, then as `poll`; False if there was none."""
        if self._thread is None:
            return False
        self._thread.join()
        self._thread = None
        self.store.release_spills()
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure
        self._committed()
        return True

    def _write(self, blob: bytes) -> None:
        try:
            self.store.write(blob)
        except BaseException as exc:  # raised on the pipeline thread by poll or wait
            self._failure = exc
