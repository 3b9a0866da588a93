"""Checkpoints written on a thread of their own, so that the stream goes on meanwhile.

The pipeline thread takes the state (copies of it, which nothing changes afterwards)
and queues a barrier behind the outputs submitted before it. On the writer's thread,
the checkpoint waits for the barrier (every output it covers written, the sinks
flushed and their states taken), then encodes the state, hashes the bytes and commits
them to SQLite. Until that commit, spills are held in memory (they come after the
state being written) and the sources' positions are not committed: `poll`, on the
pipeline thread, finds the write done and only then calls `committed`, which commits
the positions the checkpoint stands for. A crash before that leaves the previous
checkpoint and the previous positions, which agree. One write is in flight at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from streamer.core.threads import thread_name
from streamer.engine.checkpoint import CheckpointStore, encode
from streamer.engine.sink_writer import Barrier


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

    def start(
        self, state: dict[str, Any], committed: Callable[[], None], sinks: Barrier | None = None
    ) -> None:
        """Write `state` on the writer's thread, with the sinks' states at `sinks` (as
        `state["sinks"]`) once it is reached; `committed` runs on the caller's thread,
        from `poll` or `wait`, once it is durable. `state` must not change meanwhile."""
        if self._thread is not None:
            raise RuntimeError("a checkpoint is already being written")
        self.store.hold_spills()
        self._committed = committed
        self._thread = threading.Thread(
            target=self._write,
            args=(state, sinks),
            name=thread_name("checkpoint-writer"),
            daemon=True,
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

    def _write(self, state: dict[str, Any], sinks: Barrier | None) -> None:
        try:
            if sinks is not None:
                state = {**state, "sinks": sinks.wait()}
            self.store.write(encode(state))
        except BaseException as exc:  # raised on the pipeline thread by poll or wait
            self._failure = exc
