"""What the pipeline does about drift detections: alert, retrain (with a cooldown in
event time) or reset the drifted series' state."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streamer.core.records import NS_PER_S
from streamer.engine.drift import Action, Detection

log = logging.getLogger(__name__)

TELL_EVERY_NS = 60 * NS_PER_S  # of event time, between two INFO lines about drift


def _when(time_ns: int) -> str:
    return datetime.fromtimestamp(time_ns / NS_PER_S, UTC).isoformat(timespec="seconds")


class DriftResponse:
    """What the pipeline does about detections: `on_drift`, with a retrain cooldown
    counted in event time (so a replay and a live run decide alike).

    Each drift retrain is logged with its cause (the batch's largest move: series,
    signal, detector, statistic) and how many other series drifted in the cooldown
    before it; detections held back by the cooldown are logged with how many series
    have drifted since that retrain, so a storm over all series reads as one.
    """

    def __init__(
        self,
        action: Action,
        cooldown_s: float,
        request_retrain: Callable[[str], None] | None,
        reset_slots: Callable[[NDArray[np.int64]], None] | None,
    ) -> None:
        self.action = action
        self.cooldown_ns = round(cooldown_s * NS_PER_S)
        self.request_retrain = request_retrain
        self.reset_slots = reset_slots
        self.last_retrain_ns: int | None = None
        self.retrains_requested = 0
        self.held_back = 0  # detections inside a cooldown, in all
        self.cause: Detection | None = None  # of the last drift retrain
        self.since_retrain: set[str] = set()  # other series drifted since it
        self.last_drift_ns: dict[str, int] = {}  # per series, within the last cooldown
        self.told_ns: int | None = None  # event time of the last drift line (`_tell`)
        self.untold = 0  # detections since then

    def apply(self, detections: list[Detection]) -> None:
        if not detections:
            return
        if self.action != "retrain":
            self._tell(detections)
        if self.action == "retrain" and self.request_retrain is not None:
            self._retrain(detections)
        elif self.action == "reset_state" and self.reset_slots is not None:
            self.reset_slots(np.unique(np.array([d.slot for d in detections], dtype=np.int64)))

    def _tell(self, detections: list[Detection]) -> None:
        """One INFO line for a batch's detections (at most one per TELL_EVERY of event
        time; the ones in between are counted in the next): the largest move, and what
        `on_drift` does about it. Drift retrains have their own line."""
        self.untold += len(detections)
        at = max(d.time_ns for d in detections)
        if self.told_ns is not None and at - self.told_ns < TELL_EVERY_NS:
            return
        largest = sorted(detections, key=lambda d: (-abs(d.statistic), d.time_ns))
        first = largest[0]
        others = ", ".join(f"{d.series} {d.signal} {d.statistic:+.1f} sd" for d in largest[1:4])
        done = {
            "alert": "recorded as drift points (on_drift: alert)",
            "reset_state": "their model state and scale reset (on_drift: reset_state)",
        }[self.action]
        log.info(
            "drift: series %s, signal %s, detector %s, statistic %+.2f sd, at %s%s "
            "(%d detection(s) in all since the last such line); %s",
            first.series,
            first.signal,
            first.detector,
            first.statistic,
            _when(first.time_ns),
            f"; also {others}{', ...' if len(largest) > 4 else ''}" if others else "",
            self.untold,
            done,
        )
        self.told_ns, self.untold = at, 0

    def _retrain(self, detections: list[Detection]) -> None:
        assert self.request_retrain is not None
        at = max(d.time_ns for d in detections)
        names = {d.series for d in detections}
        recent = self.last_drift_ns
        for name in [s for s, t in recent.items() if at - t >= self.cooldown_ns]:
            del recent[name]
        last = self.last_retrain_ns
        if last is not None and at - last < self.cooldown_ns:
            cause = "unknown" if self.cause is None else self.cause.series
            self.held_back += len(detections)
            self.since_retrain |= names - {cause}
            recent.update((d.series, d.time_ns) for d in detections)
            log.info(
                "drift in %d series held back by the retrain cooldown (%s s): the drift "
                "retrain at %s (cause: series %s) is too recent; %d other series have "
                "drifted since it",
                len(names),
                f"{self.cooldown_ns / NS_PER_S:g}",
                _when(last),
                cause,
                len(self.since_retrain),
            )
            return
        first = max(detections, key=lambda d: (abs(d.statistic), -d.time_ns))
        others = (names | set(recent)) - {first.series}
        recent.update((d.series, d.time_ns) for d in detections)
        self.last_retrain_ns = at
        self.retrains_requested += 1
        self.cause = first
        self.since_retrain = names - {first.series}
        log.info(
            "retrain requested on drift: series %s, signal %s, detector %s, statistic "
            "%+.2f sd, at %s; %d other series drifted in the same cooldown window "
            "(the %s s up to it)",
            first.series,
            first.signal,
            first.detector,
            first.statistic,
            _when(first.time_ns),
            len(others),
            f"{self.cooldown_ns / NS_PER_S:g}",
        )
        self.request_retrain("drift")

    def state_dict(self) -> dict[str, Any]:
        return {
            "last_retrain_ns": self.last_retrain_ns,
            "retrains_requested": self.retrains_requested,
            "held_back": self.held_back,
            "cause": self.cause,
            "since_retrain": sorted(self.since_retrain),
            "last_drift_ns": dict(self.last_drift_ns),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last_retrain_ns = state["last_retrain_ns"]
        self.retrains_requested = state.get("retrains_requested", 0)
        self.held_back = state.get("held_back", 0)
        self.cause = state.get("cause")
        self.since_retrain = set(state.get("since_retrain", ()))
        self.last_drift_ns = dict(state.get("last_drift_ns", {}))
