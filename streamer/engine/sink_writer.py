"""Writes outputs to the sinks on a thread of its own, at most `max_in_flight` behind.

The pipeline thread hands each output over through a bounded queue and goes on polling
and decoding while the writer formats, compresses and waits for the server. When the
sinks fall behind, the queue is full and `submit` blocks: the pipeline stops polling
(backpressure) instead of growing memory. A sink that fails is retried with backoff
until it takes the output; an output a sink refuses comes back as rejections for the
dead letter. `drain` waits until every submitted output is written; a `Barrier`, queued
like an output, is reached once every output before it is written and the sinks are
flushed, and holds the sinks' state then: so a checkpoint never covers an output that
was not written, and the pipeline need not wait for it.
`blocked_seconds` adds up the time the pipeline thread spent waiting in either: time
held back by the sinks, which says nothing about whether a series went quiet. The
writer's thread publishes its state as one `WriterStatus` for other threads to read.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from connectors.base import Output, Sink, pause
from streamer.core.errors import SinkError, SinkRejectedError, SinkUnusableError, shortened
from streamer.core.records import SINK_REJECTED, Rejection
from streamer.core.threads import thread_name
from streamer.engine.snapshot import WriterStatus

log = logging.getLogger(__name__)
UNUSABLE_LOG_EVERY = 60.0  # seconds between ERROR lines while a sink is unusable

_WAKE = 0.25  # seconds a blocked pipeline thread waits before checking for signals


class Barrier:
    """A mark in the writer's queue: reached once every output queued before it is
    written (or refused) and every sink flushed; `sink_states` are the sinks' states
    then (what a checkpoint of the state taken when it was queued needs)."""

    def __init__(self) -> None:
        self.sink_states: list[dict[str, Any]] = []
        self.failure: BaseException | None = None
        self._reached = threading.Event()

    def reach(self, sinks: list[Sink], failure: BaseException | None) -> None:
        """On the writer's thread: flush the sinks and take their states, unless an
        output before the barrier failed (`failure`)."""
        try:
            if failure is not None:
                raise RuntimeError("the sink writer failed") from failure
            for sink in sinks:
                sink.flush()
            self.sink_states = [sink.state_dict() for sink in sinks]
        except BaseException as exc:  # raised where the barrier is waited for
            self.failure = exc
        finally:
            self._reached.set()

    def wait(self) -> list[dict[str, Any]]:
        """Block until reached; the sinks' states, or what failed before it."""
        self._reached.wait()
        if self.failure is not None:
            raise self.failure
        return self.sink_states


class SinkWriter:
    """A background writer for a list of sinks (see module doc)."""

    def __init__(
        self,
        sinks: list[Sink],
        max_in_flight: int = 4,
        retry_wait: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        on_written: Callable[[str, float], None] | None = None,
        on_retry: Callable[[str], None] | None = None,
        names: Sequence[str] = (),
        stream: str = "",
    ) -> None:
        self.sinks = sinks
        # Each sink's name in metrics and log lines: the config's, else its class's.
        self.names = list(names) or [type(sink).__name__ for sink in sinks]
        self.clock = clock  # measures blocked_seconds: the pipeline's own clock
        self.retry_wait = retry_wait
        self.refused: queue.Queue[Rejection] = queue.Queue()
        # Outputs wait in the queue, at most max_in_flight (a slot each); barriers and
        # the stop mark take no slot, so that queueing one never holds the pipeline up.
        self.max_in_flight = max_in_flight
        self._slots = threading.Semaphore(max_in_flight)
        self._queue: queue.Queue[Output | Barrier | None] = queue.Queue()
        self._failure: BaseException | None = None
        # Observers of each write (sink name, seconds) and retry (sink name), called on
        # the writer's thread (the metrics' histogram and counter).
        self._on_written = on_written or (lambda sink, seconds: None)
        self._on_retry = on_retry or (lambda sink: None)
        self.status = WriterStatus()  # replaced, never changed, by the writer's thread
        self._latency_lock = threading.Lock()
        self._latency = (0.0, 0)  # seconds and writes since `take_latency`
        for sink in sinks:
            sink.heartbeat = self._beat
        self._unusable_logged = -math.inf
        self.blocked_seconds = 0.0  # the pipeline thread's total wait in submit and drain
        self._thread = threading.Thread(
            target=self._run, name=thread_name("sink-writer", stream), daemon=True
        )
        self._thread.start()

    def submit(self, output: Output) -> None:
        """Queue an output for the sinks; blocks while max_in_flight are waiting."""
        if self._slots.acquire(blocking=False):
            self._queue.put(output)
            return
        started = self.clock()
        try:
            while True:
                self._raise_failure()
                # Waits in short slices: a signal's handler runs in the waiting thread
                # only when it wakes, and a stop must not wait for a sink that is down.
                if self._slots.acquire(timeout=_WAKE):
                    self._queue.put(output)
                    return
        finally:
            self.blocked_seconds += self.clock() - started

    def barrier(self) -> Barrier:
        """Queue a barrier behind every output submitted so far (see `Barrier`)."""
        mark = Barrier()
        self._queue.put(mark)
        return mark

    def drain(self) -> None:
        """Return once every submitted output has been written (or refused)."""
        started = self.clock()
        done = self._queue.all_tasks_done
        with done:
            while self._queue.unfinished_tasks:
                done.wait(_WAKE)
        self.blocked_seconds += self.clock() - started
        self._raise_failure()

    @property
    def failing(self) -> bool:
        """A sink is being retried (the loop is held back or soon will be)."""
        return self.status.failing

    def take_latency(self) -> tuple[float, int]:
        """Seconds the sinks took to acknowledge, and how many writes, since the last call."""
        with self._latency_lock:
            taken, self._latency = self._latency, (0.0, 0)
        return taken

    def take_refused(self) -> list[Rejection]:
        out: list[Rejection] = []
        while True:
            try:
                out.append(self.refused.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _beat(self) -> None:
        self.status = WriterStatus(self.status.failing, self.status.problem, time.monotonic())

    def _publish(self, failing: bool, problem: str | None) -> None:
        self.status = WriterStatus(failing, problem, time.monotonic())

    def restore_sinks(self, states: list[dict[str, Any]] | None) -> None:
        """Each sink's state from a checkpoint; none (a trained model's, from `streamer
        train`, which wrote no output): each starts fresh."""
        if states is None:
            for sink in self.sinks:
                sink.start_fresh()
            return
        for sink, state in zip(self.sinks, states, strict=True):
            sink.load_state_dict(state)

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise RuntimeError("the sink writer failed") from self._failure

    def _run(self) -> None:
        while True:
            output = self._queue.get()
            try:
                if output is None:
                    return
                if isinstance(output, Barrier):
                    output.reach(self.sinks, self._failure)
                    continue
                try:
                    for sink, name in zip(self.sinks, self.names, strict=True):
                        self._write(sink, name, output)
                finally:
                    self._slots.release()
            except BaseException as exc:  # a bug: surfaced in the pipeline thread
                self._failure = exc
            finally:
                self._queue.task_done()

    def _write(self, sink: Sink, name: str, output: Output) -> None:
        attempt = 0
        while True:
            try:
                started = time.perf_counter()
                self._beat()
                sink.write(output)
                seconds = time.perf_counter() - started
                with self._latency_lock:
                    self._latency = (self._latency[0] + seconds, self._latency[1] + 1)
                self._on_written(name, seconds)
                self._publish(False, None)
                return
            except SinkRejectedError as exc:
                log.error(
                    "%s refused %d point(s), written the rest: %s",
                    name,
                    len(exc.lines),
                    shortened(str(exc)),
                )
                for line, reason in zip(exc.lines, exc.reasons, strict=True):
                    self.refused.put(Rejection(SINK_REJECTED, reason, line.encode(), None))
                return
            except SinkUnusableError as exc:  # wrong token or bucket: an outage until fixed
                attempt += 1
                self._publish(True, str(exc))
                self._on_retry(name)
                now = time.monotonic()
                if now - self._unusable_logged >= UNUSABLE_LOG_EVERY:
                    self._unusable_logged = now
                    log.error("%s; its outputs wait, polling pauses, nothing is dropped", exc)
                pause(min(30.0, self.retry_wait * 2 ** min(attempt, 5)), self._beat)
            except SinkError as exc:
                attempt += 1
                self._publish(True, f"{name}: {exc}")
                self._on_retry(name)
                wait = min(30.0, self.retry_wait * 2 ** min(attempt, 5))
                log.warning(
                    "%s cannot write (%s); retrying in %.1fs; polling pauses when %d outputs wait",
                    name,
                    exc,
                    wait,
                    self.max_in_flight,
                )
                pause(wait, self._beat)
