"""Incremental retraining while the stream keeps flowing.

APScheduler asks for a retrain on `retrain.schedule`, and anything else (drift) may ask
on demand; a request only sets a flag. The pipeline thread calls `poll` at every batch
boundary: it starts a job when one is wanted (a snapshot of the replay buffer and a
copy of the weights, handed to a training thread with its own small torch thread
count), and when a job has finished it decides champion against challenger on the most
recent held-out windows and, if the candidate wins, swaps it in right there, between two
batches, re-synchronising every series' state. Nothing but `poll` touches the model.

Every attempt is logged and returned as a `retrain` event for the sinks.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch

from models.base import Candidate, Trainable, TrainingJob, TrainSettings
from streamer.core.records import Event
from streamer.core.threads import thread_name

log = logging.getLogger(__name__)

Promote = Literal["if_better", "always"]


@dataclass(frozen=True)
class RetrainSettings:
    """How a retrain trains and decides (see the `retrain` config section)."""

    burn_in: int = 16
    epochs: int = 1
    batch_size: int = 256
    learning_rate: float = 1e-3
    validation_fraction: float = 0.2
    promote: Promote = "if_better"
    promote_tolerance: float = 0.0
    max_duration: float = 300.0
    min_new_steps: int = 500
    threads: int = 1
    seed: int = 0


@dataclass(frozen=True)
class Attempt:
    """One retrain: the version serving afterwards, losses on the held-out windows,
    whether the candidate was promoted, how long it took, and why it ran."""

    version: int
    loss_before: float
    loss_after: float
    promoted: bool
    seconds: float
    windows: int
    reason: str

    def event(self, model: str, time_ns: int) -> Event:
        fields: dict[str, float | int | bool | str] = {
            "version": self.version,
            "promoted": self.promoted,
            "seconds": self.seconds,
            "windows": self.windows,
            "reason": self.reason,
        }
        # Line protocol holds no NaN or infinity: a diverged loss is left out.
        for name in ("loss_before", "loss_after"):
            value = getattr(self, name)
            if math.isfinite(value):
                fields[name] = value
        return Event("retrain", {"model": model}, fields, time_ns)


def should_promote(before: float, after: float, promote: Promote, tolerance: float) -> bool:
    """Whether a candidate with held-out loss `after` replaces one with `before`.

    >>> should_promote(1.0, 0.95, "if_better", 0.1), should_promote(1.0, 0.85, "if_better", 0.1)
    (False, True)
    >>> should_promote(1.0, float("nan"), "always", 0.0)
    False
    """
    if not math.isfinite(after):
        return False
    if promote == "always" or not math.isfinite(before):
        return True
    return after < before * (1.0 - tolerance)


@dataclass
class _Job:
    work: TrainingJob  # copies of the weights and the windows, taken on the loop's thread
    reason: str
    half_life: int | None  # recency half-life of the sample, in windows (None: half of them)
    started: float
    seed: int


class Retrainer:
    """Schedules, runs and promotes retrains of one recurrent forecaster (see module doc)."""

    def __init__(
        self,
        model: Trainable,
        settings: RetrainSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model = model
        self.settings = settings
        self.clock = clock
        self.outcomes: Counter[str] = Counter()  # promoted / rejected / skipped / failed
        self.last: Attempt | None = None
        self._requested: str | None = None
        self._not_before = 0  # steps recorded in all before a waiting request may start
        self._fresh_from: int | None = None  # train only on windows archived from here
        self._lock = threading.Lock()
        self._results: queue.SimpleQueue[tuple[_Job, Candidate | BaseException]] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._recorded_at_last = 0
        self._scheduler: Any = None
        # In a group of replicas: whether this one trains now (`streamer.engine.lineage`).
        self.allowed: Callable[[], bool] = lambda: True

    # --- asking for a retrain: any thread ----------------------------------------------

    def request(self, reason: str = "on demand", fresh_data: bool = False) -> None:
        """Ask for a retrain; it starts at the pipeline's next batch boundary. With
        `fresh_data` (a drift: the stream changed) it waits until `min_new_steps` more
        steps have arrived, and samples mostly the windows recorded since the request, so
        it learns what the stream does now more than what it did."""
        model = self.model
        with self._lock:
            if self._requested is None:
                self._requested = reason
                wait = self.settings.min_new_steps if fresh_data else 0
                self._not_before = model.recorded + wait
                self._fresh_from = model.archived if fresh_data else None

    def start_schedule(self, schedule: str, interval_seconds: float | None) -> None:
        """Request a retrain on a schedule: every interval_seconds, or by crontab."""
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        trigger: Any = (
            IntervalTrigger(seconds=interval_seconds)
            if interval_seconds is not None
            else CronTrigger.from_crontab(schedule, timezone="UTC")
        )
        self._scheduler = BackgroundScheduler(daemon=True, timezone="UTC")
        self._scheduler.add_job(
            self.request, trigger, args=["schedule"], coalesce=True, max_instances=1
        )
        self._scheduler.start()

    def stop(self) -> None:
        """Stop the schedule and any training (its result is dropped)."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def trainer(self) -> bool:
        return self.allowed()

    @property
    def running(self) -> bool:
        return self._thread is not None

    # --- the pipeline thread ------------------------------------------------------------

    def poll(self, now_ns: int) -> list[Event]:
        """At a batch boundary: finish a done job (maybe swapping weights), start a wanted one."""
        events = []
        try:
            job, result = self._results.get_nowait()
        except queue.Empty:
            pass
        else:
            self._thread = None
            attempt = self._finish(job, result)
            if attempt is not None:
                events.append(attempt.event(self.model.name, now_ns))
        if self._thread is None:
            wanted = self._take_request()
            if wanted is not None:
                self._thread = threading.Thread(
                    target=self._train, args=(wanted,), name=thread_name("retrain"), daemon=True
                )
                self._thread.start()
        return events

    def run_now(self, reason: str = "on demand") -> Attempt | None:
        """Train and decide in this thread (evaluation in event time; tests)."""
        self.request(reason)
        return self.run_pending()

    def run_pending(self) -> Attempt | None:
        """Run a request that is due, in this thread; None when none is."""
        job = self._take_request()
        if job is None:
            return None
        try:
            result: Candidate | BaseException = self._fit(job)
        except Exception as exc:
            result = exc
        return self._finish(job, result)

    def _take_request(self) -> _Job | None:
        model = self.model
        with self._lock:
            if self._requested is None or model.recorded < self._not_before:
                return None
            if not self.allowed():
                self._requested = None  # another replica trains the group's model
                return None
            reason, self._requested = self._requested, None
            fresh_from = self._fresh_from
        new_steps = model.recorded - self._recorded_at_last
        work = model.training_job()  # copied here: the pipeline owns the model
        # After a drift, windows since the request weigh most: half the weight is theirs.
        half_life = None if fresh_from is None else max(1, model.archived - fresh_from)
        if new_steps < self.settings.min_new_steps or work.stored < 2:
            self.outcomes["skipped"] += 1
            log.info(
                "retrain (%s) skipped: %d new steps (min_new_steps %d), %d stored windows "
                "(2 needed)",
                reason,
                new_steps,
                self.settings.min_new_steps,
                work.stored,
            )
            return None
        self._recorded_at_last = model.recorded
        return _Job(
            work=work,
            reason=reason,
            half_life=half_life,
            started=self.clock(),
            seed=self.settings.seed + model.archived,
        )

    def _train(self, job: _Job) -> None:
        torch.set_num_threads(self.settings.threads)  # this thread only
        try:
            result: Candidate | BaseException = self._fit(job)
        except Exception as exc:
            result = exc
        self._results.put((job, result))

    def _fit(self, job: _Job) -> Candidate:
        s = self.settings
        deadline = job.started + s.max_duration
        return job.work.train(
            TrainSettings(
                burn_in=s.burn_in,
                epochs=s.epochs,
                batch_size=s.batch_size,
                learning_rate=s.learning_rate,
                validation_fraction=s.validation_fraction,
            ),
            job.seed,
            job.half_life,
            lambda: self._stopping.is_set() or self.clock() >= deadline,
        )

    def _finish(self, job: _Job, result: Candidate | BaseException) -> Attempt | None:
        seconds = self.clock() - job.started
        if self._stopping.is_set():
            return None
        if not self.allowed():
            log.info("retrain (%s) dropped: another replica trains the model now", job.reason)
            return None
        if isinstance(result, BaseException):
            self.outcomes["failed"] += 1
            log.error("retrain (%s) failed after %.1fs: %r", job.reason, seconds, result)
            return None
        s = self.settings
        promoted = should_promote(
            result.loss_before, result.loss_after, s.promote, s.promote_tolerance
        )
        model = self.model
        if promoted:
            model.promote(job.work, result, s.burn_in)
        attempt = Attempt(
            version=model.version,
            loss_before=result.loss_before,
            loss_after=result.loss_after,
            promoted=promoted,
            seconds=seconds,
            windows=result.windows,
            reason=job.reason,
        )
        self.outcomes["promoted" if promoted else "rejected"] += 1
        self.last = attempt
        log.info(
            "retrain (%s): held-out loss %.4g -> %.4g on %d windows in %.1fs%s; %s, "
            "serving version %d",
            job.reason,
            result.loss_before,
            result.loss_after,
            result.windows,
            seconds,
            " (stopped at max_duration)" if result.stopped_early else "",
            "promoted" if promoted else "kept the current weights",
            model.version,
        )
        return attempt
