"""Retraining in event time: the pipeline's retrain hook while `evaluate` replays a file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from streamer.core.records import Event
from streamer.engine.retrain import Retrainer
from streamer.engine.window import WindowBuffer


class EventTimeSchedule:
    """The pipeline's retrain hook for evaluation: train on the warm-up rows once the
    model has seen them all, then retrain every `every` steps of event time, in the
    pipeline thread (deterministic, and nothing is read meanwhile)."""

    def __init__(
        self, retrainer: Retrainer, window: WindowBuffer, warmup_step: int, every: int, epochs: int
    ) -> None:
        self.retrainer = retrainer
        self.window = window
        self.warmup_step = warmup_step
        self.every = every
        self.epochs = epochs
        self.seen = -1  # the newest step the model has been given
        self.next_due: int | None = None
        self.events: list[Event] = []

    @property
    def due_step(self) -> int:
        """The step whose close makes a retrain due (the warm-up's, then the next one)."""
        return self.warmup_step - 1 if self.next_due is None else self.next_due

    def poll(self, now_ns: int) -> list[Event]:
        seen, self.seen = self.seen, int(self.window.last_closed.max(initial=-1))
        attempt = self.retrainer.run_pending() if self.next_due is not None else None  # drift
        if self.next_due is None and seen >= self.warmup_step - 1:
            settings = self.retrainer.settings
            self.retrainer.settings = replace(settings, epochs=self.epochs, min_new_steps=1)
            attempt = self.retrainer.run_now("warm-up")
            self.retrainer.settings = settings
            self.next_due = seen + self.every
        elif attempt is None and self.next_due is not None and seen >= self.next_due:
            attempt = self.retrainer.run_now("schedule")
            self.next_due = seen + self.every
        if attempt is None:
            return []
        event = attempt.event(self.retrainer.model.name, seen * self.window.step_ns)
        self.events.append(event)
        return [event]

    @property
    def outcomes(self) -> Mapping[str, int]:
        return self.retrainer.outcomes

    @property
    def trainer(self) -> bool:
        return True

    def stop(self) -> None:
        pass
