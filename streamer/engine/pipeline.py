"""The micro-batch loop: poll -> decode -> window -> forecast -> sinks -> commit.

One thread owns all mutable state; outputs are handed to a `SinkWriter`, which writes
them on its own thread at most `max_in_flight` behind, so polling and decoding overlap
the sinks' I/O, and a slow or failing sink stops polling (backpressure, bounded
memory) while the same output is retried. Source positions are committed only after a
checkpoint has recorded them together with the window and model state, and every
output up to them is written, so a restart continues exactly: replayed events rebuild
the same steps and overwrite the same points.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from connectors.base import DeadLetter, Output, PayloadDecoder, Sink, Source
from models.base import Forecaster, Scorer
from streamer.core.errors import SourceError
from streamer.core.records import LATE, NS_PER_S, Event, Rejection, StepBatch, concat_batches
from streamer.engine.checkpoint import CheckpointStore, unusable
from streamer.engine.checkpoint_writer import CheckpointWriter
from streamer.engine.decoding import Polled, decode
from streamer.engine.drift import DriftMonitor
from streamer.engine.drift_response import DriftResponse
from streamer.engine.partitions import PartitionStates
from streamer.engine.pipeline_settings import DEFAULT_SETTINGS, RetrainHook, SinkObserver
from streamer.engine.pipeline_settings import PipelineSettings as PipelineSettings
from streamer.engine.reporting import Counters, Rejections, Reporter, unrepresentable
from streamer.engine.series_state import SeriesStates
from streamer.engine.sink_writer import SinkWriter
from streamer.engine.snapshot import Snapshot, SourceStatus
from streamer.engine.window import WindowBuffer

log = logging.getLogger(__name__)


class Pipeline:
    """Runs the daemon's loop over sources, a window, a forecaster and sinks."""

    def __init__(
        self,
        *,
        sources: Sequence[tuple[Source, PayloadDecoder]],
        window: WindowBuffer,
        forecaster: Forecaster,
        sinks: list[Sink],
        dead_letter: DeadLetter | None = None,
        checkpoints: CheckpointStore | None = None,
        retrainer: RetrainHook | None = None,
        outcomes: Scorer | None = None,
        drift: DriftMonitor | None = None,
        on_drift: DriftResponse | None = None,
        settings: PipelineSettings = DEFAULT_SETTINGS,
        clock: Callable[[], float] = time.time,
        observer: SinkObserver | None = None,
        partitions: Callable[[SeriesStates], PartitionStates] | None = None,
    ) -> None:
        self.sources = sources
        self.window = window
        self.forecaster = forecaster
        self.sinks = sinks
        self.dead_letter = dead_letter
        self.checkpoints = checkpoints
        self.retrainer = retrainer
        self.outcomes = outcomes
        self.drift = drift
        self.on_drift = on_drift
        self.settings = settings
        self.clock = clock
        self.series = SeriesStates(window, forecaster, outcomes, drift)  # to move series
        # In a group of replicas: the state of this one's partitions, in a changelog.
        self.partitions = partitions(self.series) if partitions else None
        # Checkpoints written in the background; in a group, the changelog's commit
        # carries the positions, and it is made on this thread.
        self.saver = (
            CheckpointWriter(checkpoints) if checkpoints and self.partitions is None else None
        )
        told: tuple[Any, Any] = (observer.written, observer.retried) if observer else (None, None)
        writing = (settings.max_in_flight, settings.sink_retry_wait, clock, *told)
        self.writer = SinkWriter(sinks, *writing, settings.sink_names, settings.stream)
        for source, _ in sources:  # a rebalance commits what was read first
            source.on_revoke = functools.partial(self._revoke, source.name)
        self.counters = Counters()
        self.rejections = Rejections(self.counters, dead_letter, settings.rejected_log_every)
        self.reporter = Reporter(
            settings.stats_tags, settings.stats_every, settings.progress_every, clock()
        )
        self.positions: dict[str, dict[str, int]] = {s.name: {} for s, _ in sources}
        self._last_checkpoint = clock()
        # Processing time as the window sees it: it advances only while every source
        # is ready and caught up and the loop is not held back by its sinks, so outages,
        # restarts, rebalances and the backlogs after them do not make series look idle.
        self.idle_clock = 0.0
        self._last_tick = clock()
        self._blocked_at_tick = 0.0
        self.restored = False
        self.started = False  # restored, or begun afresh: the model is loaded
        self.last_step_at = time.monotonic()  # when the loop last finished a micro-batch
        self._stats_events: list[Event] = []
        self._model_version: int | None = None
        self.snapshot = Snapshot()  # what other threads read; replaced after each batch

    # --- lifecycle ----------------------------------------------------------------------

    def restore(self) -> bool:
        """Continue from the newest checkpoint, if there is one."""
        restored = self._restore()
        self._publish()
        return restored

    def _restore(self) -> bool:
        state = self.checkpoints.load() if self.checkpoints else None
        self.started = True
        if state is None:
            for sink in self.sinks:
                sink.start_fresh()
            return False
        try:
            self.forecaster.load_state_dict(state["forecaster"])
            if self.partitions is None:
                self.window.load_state_dict(state["window"])
                parts = {"outcomes": self.outcomes, "drift": self.drift, "on_drift": self.on_drift}
                for part, mine in parts.items():
                    if mine is not None and state.get(part) is not None:
                        mine.load_state_dict(state[part])
        except (KeyError, ValueError, TypeError, IndexError, RuntimeError) as exc:
            raise unusable(self.checkpoints.path if self.checkpoints else None, exc) from None
        if self.partitions is not None:  # series come from the changelog, offsets from Kafka
            return True
        self.writer.restore_sinks(state["sinks"])
        self.positions.update({name: dict(p) for name, p in state["positions"].items()})
        if state["idle_clock"] is not None:
            self.idle_clock = float(state["idle_clock"])
        for source, _ in self.sources:
            with _reading(source):  # a replay reads its file up to the position
                source.seek(self.positions.get(source.name, {}))
        self.restored = True
        return True

    def run(self, stop: threading.Event) -> Counters:
        """Run until stop is set, or (with stop_at_end) every source is exhausted."""
        while not stop.is_set():
            self.step()
            if self.settings.stop_at_end and all(s.exhausted for s, _ in self.sources):
                self._flush_windows()
                break
        self._maybe_stats(self.clock(), force=True)  # a last report, written with the rest
        self._emit(self.window.empty(), self._stats_events)
        self._stats_events = []
        self.checkpoint()
        if self.partitions is not None:
            self.partitions.keep_local(self.idle_clock)  # for a faster restore after this
        self.reporter.progress(self.clock(), self.counters, self.window.live_series, force=True)
        return self.counters

    def abandon(self) -> None:
        """Stop at once (a second signal, or shutdown_timeout passed): nothing more is
        written or saved, so the last checkpoint stands; the writer and the sources are
        left to the process's exit rather than waited for."""
        if self.checkpoints and not (self.saver and self.saver.busy):
            self.checkpoints.close()  # (one being written is left to the process's exit)

    def close(self) -> None:
        if self.saver is not None and self.saver.busy:
            try:
                self.saver.wait()  # a checkpoint being written is finished first
            except Exception:
                log.exception("the last checkpoint could not be written")
        if self.retrainer:
            self.retrainer.stop()
        self.writer.close()
        for source, _ in self.sources:
            source.close()
        for sink in self.sinks:
            sink.close()
        if self.dead_letter:
            self.dead_letter.close()
        if self.checkpoints:
            self.checkpoints.close()
        if self.partitions is not None:
            self.partitions.close()

    # --- one micro-batch ----------------------------------------------------------------

    def step(self) -> int:
        """Poll, decode, window, forecast and write one micro-batch; returns records read."""
        polled = self._poll()
        if self.partitions is not None:
            self.partitions.restore(self.idle_clock)  # those assigned in that poll
        records = sum(len(batch) for _, batch in polled)
        now = self.clock()
        blocked = self.writer.blocked_seconds
        if all(source.ready and source.caught_up for source, _ in self.sources):
            waited = blocked - self._blocked_at_tick
            self.idle_clock += max(0.0, now - self._last_tick - waited)
        self._last_tick, self._blocked_at_tick = now, blocked
        decoded = decode(polled, int(now * NS_PER_S))
        if self.partitions is not None:
            self.partitions.admit(decoded)
        result = self.window.add(
            decoded.series,
            decoded.kinds,
            np.array(decoded.times, dtype=np.int64),
            np.array(decoded.values, dtype=np.float64),
            self.idle_clock,
        )
        for i in result.late.tolist():
            record = decoded.origin[i]
            at = np.datetime64(decoded.times[i], "ns")
            detail = f"its step (event time {at}Z) had closed; allowed_lateness was exceeded"
            decoded.rejections.append(Rejection(LATE, detail, record.payload, record.position))
        closed = concat_batches([result.closed, self.window.close_idle(self.idle_clock)])
        if self.partitions is not None:
            self.partitions.touched(decoded.series + closed.series.tolist())
        # A batch boundary: the one place new weights may be swapped in.
        events = self.retrainer.poll(int(now * NS_PER_S)) if self.retrainer else []
        events += self._stats_events
        self._stats_events = []
        self._emit(closed, events)
        self.rejections.add(decoded.rejections + self.writer.take_refused(), now)
        self.counters.events_in += records
        self.counters.observations += len(decoded.series) - len(result.late)
        self.counters.batches += 1
        self._maybe_checkpoint(now)
        self.reporter.progress(now, self.counters, self.window.live_series)
        self._maybe_stats(now)
        self.last_step_at = time.monotonic()
        self._publish()
        return records

    def _publish(self) -> None:
        """Replace the snapshot other threads read (one reference: atomic)."""
        c = self.counters
        self.snapshot = Snapshot(
            started=self.started,
            last_step_at=self.last_step_at,
            sources=tuple(
                SourceStatus(s.name, s.ready, s.problem, self.reporter.partitions.get(s.name, ()))
                for s, _ in self.sources
            ),
            events_in=c.events_in,
            rejected=dict(c.rejected),
            steps_closed=c.steps_closed,
            forecasts_out=c.forecasts_out,
            live_series=self.window.live_series,
            lag=self.reporter.lag,
            model_version=self._model_version,
            retrains=dict(self.retrainer.outcomes) if self.retrainer else None,
            drifts=dict(self.drift.detections) if self.drift else None,
            group=None if self.partitions is None else self.partitions.status(self._trainer()),
        )

    def _trainer(self) -> bool | None:
        return None if self.retrainer is None else self.retrainer.trainer

    def _poll(self) -> Polled:
        """Records from each source (with the decoder for them), up to max_batch in all."""
        polled: Polled = []
        count = 0
        wait = self.settings.max_wait / max(1, len(self.sources))
        for source, decoder in self.sources:
            room = self.settings.max_batch - count
            if room <= 0:
                break
            with _reading(source):
                got = source.poll(room, 0.0 if count else wait)
            if not got:
                continue
            polled.append((decoder, got))
            count += len(got)
            latest = self.positions[source.name]
            for record in got:
                position = record.position
                if position.offset >= latest.get(position.partition, 0):
                    latest[position.partition] = position.offset + 1
        return polled

    def _emit(self, closed: StepBatch, events: list[Event]) -> None:
        if self.window.unrepresentable:
            self.rejections.add(unrepresentable(self.window), self.clock())
        if len(closed) == 0 and not events:
            return
        forecasts = self.forecaster.step(closed)
        if forecasts.version is not None:
            self._model_version = forecasts.version
        errors = None
        if self.outcomes is not None:
            errors, forecasts = self.outcomes.observe(closed, forecasts)
        if self.drift is not None:
            detections = self.drift.update(closed, errors)
            events = events + [d.event() for d in detections]
            if self.on_drift is not None:
                self.on_drift.apply(detections)
        self.writer.submit(Output(closed, forecasts, tuple(events), errors))
        self.counters.steps_closed += len(closed)
        self.counters.forecasts_out += len(forecasts) * forecasts.horizon

    def _flush_windows(self) -> None:
        """Close every open step (the end of a replay): nothing is left unwritten."""
        self._emit(self.window.close_idle(math.inf), [])

    # --- checkpoints, commits, progress --------------------------------------------------

    def _maybe_checkpoint(self, now: float) -> None:
        """A checkpoint when one is due: in the background where it can be, the sinks'
        state taken at a barrier behind the outputs so far (a previous checkpoint still
        being written puts the next one off)."""
        if self.saver is not None:
            self.saver.poll()  # commits the positions of one written since the last batch
        every = self.settings.checkpoint_every
        due = every is not None and now - self._last_checkpoint >= every
        if not (due or any(s.wants_commit for s, _ in self.sources)):
            return
        if self.saver is None:
            self.checkpoint()
        elif not self.saver.busy:
            positions = {name: dict(p) for name, p in self.positions.items()}
            state = self.state_dict(with_sinks=False)
            committed = functools.partial(self._saved, positions)
            self.saver.start(state, committed, self.writer.barrier())
            self._last_checkpoint = self.clock()

    def checkpoint(self) -> None:
        """Flush sinks, save the state with the positions it stands for, then commit them."""
        if self.saver is not None:
            self.saver.wait()
        self._flush_outputs()
        if self.checkpoints:
            self.checkpoints.save(self.state_dict())
        if self.partitions is not None:
            self.partitions.commit(self.positions, self.idle_clock)
        self._saved(self.positions)
        self._last_checkpoint = self.clock()

    def _flush_outputs(self) -> None:
        """Every output written and acknowledged, and the dead letter flushed: what a
        checkpoint's positions stand for."""
        self.writer.drain()
        for sink in self.sinks:
            sink.flush()
        self._flush_rejections()

    def _flush_rejections(self) -> None:
        """What the sinks refused, to the dead letter, and the dead letter flushed."""
        self.rejections.add(self.writer.take_refused(), self.clock())
        if self.dead_letter:
            self.dead_letter.flush()

    def _saved(self, positions: Mapping[str, Mapping[str, int]]) -> None:
        """A checkpoint is durable: commit the positions it stands for (for one written
        behind the stream, after the rejections made before its barrier)."""
        self._flush_rejections()
        if self.checkpoints is not None:
            self.counters.checkpoints += 1
        for source, _ in self.sources:
            read = positions.get(source.name)
            if read and not (self.partitions and self.partitions.holds(source.name)):
                source.commit(read)

    def _revoke(self, source: str, partitions: list[str]) -> None:
        self.checkpoint()
        if self.partitions is not None:
            self.partitions.revoked(source, partitions)

    def state_dict(self, with_sinks: bool = True) -> dict[str, Any]:
        """The whole state as copies (sinks' only `with_sinks`: see `_maybe_checkpoint`)."""
        return {
            "window": self.window.state_dict(),
            "forecaster": self.forecaster.state_dict(),
            "outcomes": None if self.outcomes is None else self.outcomes.state_dict(),
            "drift": None if self.drift is None else self.drift.state_dict(),
            "on_drift": None if self.on_drift is None else self.on_drift.state_dict(),
            "sinks": [sink.state_dict() for sink in self.sinks] if with_sinks else [],
            "positions": {name: dict(p) for name, p in self.positions.items()},
            "idle_clock": self.idle_clock,
        }

    def _maybe_stats(self, now: float, force: bool = False) -> None:
        """Every stats_every: refresh the consumer lag and queue a streamer_stats event."""
        sources = [source for source, _ in self.sources]
        event = self.reporter.stats(
            now,
            sources,
            self.positions,
            self.counters,
            self.window.live_series,
            self.writer.take_latency,
            force,
        )
        if event is not None:
            self._stats_events.append(event)


@contextlib.contextmanager
def _reading(source: Source) -> Iterator[None]:
    """A file a source cannot read on (a replay file found empty, damaged or not UTF-8,
    also when seeking back to a checkpoint's row) as a SourceError naming it."""
    try:
        yield
    except (OSError, EOFError, ValueError) as exc:
        where = str(getattr(source, "path", ""))  # a file source's file, when not said
        at = f"{where}: " if where and where not in str(exc) else ""
        why = "not UTF-8 text: " if isinstance(exc, UnicodeDecodeError) else ""
        raise SourceError(f"source {source.name!r} cannot be read: {at}{why}{exc}") from exc
