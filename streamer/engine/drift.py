"""Drift monitoring: river.drift detectors per series, on forecast errors and on inputs.

Per series (by name, so a series keeps its detectors when its window slot changes), one
detector watches the horizon-1 absolute error scaled by the series' running std, and one
watches the input values (for prices, their log returns: a price level wanders by
nature, a change in its returns is news); which of them run is `drift.signal`.

Each (signal, series) first learns a reference over the detector config's `warmup`
values (median and MAD, so a few wild first values, as errors scaled by a std of two
points are, do not set it), then keeps it up to date as an exponentially weighted mean
and variance (half-life `REFERENCE_HALFLIFE` values). The detector is fed each value
standardised by that reference and clipped to +/-`CLIP`, and the reference learns the
clipped value. So one set of detector parameters fits every series whatever its scale
(Page-Hinkley's allowance and threshold are in reference standard deviations), a single
outlier is not a drift, and a slow wander that the reference follows is not either. The
default, Page-Hinkley with allowance 1 sd and threshold 40, is a two-sided CUSUM: it
needs a sustained move of the level; autocorrelated noise (AR(1), daily cycles) rarely
sustains one, and a 3-sd level shift adds about 2 per step, so it fires some 20 steps
after one (bench/drift_alarms.py measures both). With `warmup` 0 (the default of ADWIN
and KSWIN, which compare windows of the signal with each other) the detector sees the
raw signal and the reference only scales the reported statistic.

After a detection the (signal, series) re-arms: its reference is learnt afresh over
`warmup` values, so the new regime is the new normal and one change gives one alarm. A
detection becomes a `drift` event (series, detector, signal; `value` the signal's
recent level in reference sds from the reference mean, positive when it rose), a log
line, and an action for the pipeline (`drift.on_drift`): `retrain` asks for a retrain,
at most one per `retrain_cooldown` of event time however many series drift, each logged
with its cause; `reset_state` has the forecaster forget that series' state and scale;
`alert` records only. Errors that fell (a better model) re-arm but are not reported.
References and detectors are pickled into the checkpoint with everything else.
"""

from __future__ import annotations

import logging
import math
import pickle
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from streamer.core.records import NS_PER_S, Event, ForecastErrors, StepBatch
from streamer.engine import checkpoint

log = logging.getLogger(__name__)

Signal = Literal["error", "input"]
Action = Literal["alert", "retrain", "reset_state"]

WARMUP = 200  # values that set a reference, when the detector's config does not say
REFERENCE_HALFLIFE = 1_000  # values; the reference follows slower changes than this
CLIP = 5.0  # reference sds: what a detector sees of one value at most
RECENT_HALFLIFE = 4  # values; the reported level is this recent


@dataclass(frozen=True)
class DetectorFactory:
    """Makes one river detector per (signal, series); `warmup` values of each set the
    reference the detector's input is standardised with."""

    build: Callable[[], Any]
    warmup: int = WARMUP

    def __call__(self) -> Any:
        return self.build()


@dataclass(frozen=True)
class Detection:
    """One series' detector fired: which, on what, when, and how far the signal moved
    (its recent level in reference sds from the reference mean)."""

    series: str
    slot: int
    signal: Signal
    detector: str
    statistic: float
    time_ns: int

    def event(self) -> Event:
        return Event(
            "drift",
            {"detector": self.detector, "series": self.series, "signal": self.signal},
            {"value": self.statistic},
            self.time_ns,
        )


class _Feed:
    """One (signal, series): the reference its values are standardised with (learnt
    from `warm` while that is not None), and its detector once armed."""

    __slots__ = ("count", "detector", "mean", "recent", "var", "warm")

    def __init__(self, detector: Any) -> None:
        self.count = 0
        self.mean = 0.0
        self.var = 0.0
        self.recent = 0.0  # exponentially weighted standardised value, for the report
        self.warm: array[float] | None = None if detector is not None else array("d")
        self.detector = detector


def _reference(values: array[float]) -> tuple[float, float]:
    """Mean and variance of the values, winsorised at CLIP robust sds from their median
    (the std of them all where their MAD is 0)."""
    a = np.asarray(values, dtype=np.float64)
    center = float(np.median(a))
    spread = 1.4826 * float(np.median(np.abs(a - center))) or float(a.std())
    if spread > 0:
        a = np.clip(a, center - CLIP * spread, center + CLIP * spread)
    return float(a.mean()), float(a.var())


class DriftMonitor:
    """Feeds each series' detectors and reports what they detect (see module doc).
    `make` builds one detector; its `warmup` (a `DetectorFactory`'s, else `WARMUP`)
    sets how many values of each (signal, series) go to its reference first."""

    def __init__(
        self,
        make: Callable[[], Any],
        detector_name: str,
        signals: tuple[Signal, ...] = ("error", "input"),
    ) -> None:
        self.make = make
        self.detector_name = detector_name
        self.signals = signals
        self.warmup = int(getattr(make, "warmup", WARMUP))
        self.min_weight = 1.0 - 0.5 ** (1.0 / REFERENCE_HALFLIFE)
        self.recent_weight = 1.0 - 0.5 ** (1.0 / RECENT_HALFLIFE)
        self.feeds: dict[tuple[Signal, str], _Feed] = {}
        self.last_price: dict[str, float] = {}  # for price series' log returns
        self.detections: Counter[str] = Counter()  # by detector name, for the metrics

    def update(self, batch: StepBatch, errors: ForecastErrors | None) -> list[Detection]:
        """Feed the batch's real input values and its horizon-1 errors, in time order."""
        found: list[Detection] = []
        if "input" in self.signals and len(batch):
            real = ~batch.filled
            self._feed(
                "input",
                batch.series[real],
                batch.slots[real],
                self._inputs(batch, real),
                batch.times_ns[real],
                found,
            )
        if "error" in self.signals and errors is not None and len(errors):
            first = errors.horizon == 1
            self._feed(
                "error",
                errors.series[first],
                errors.slots[first],
                errors.scaled[first],
                errors.times_ns[first],
                found,
            )
        if found:
            shown = ", ".join(f"{d.series} {d.signal} {d.statistic:+.1f} sd" for d in found[:5])
            log.warning(
                "drift in %d series (%s%s), %s detector",
                len({d.series for d in found}),
                shown,
                ", ..." if len(found) > 5 else "",
                self.detector_name,
            )
        return found

    def _inputs(self, batch: StepBatch, real: NDArray[np.bool_]) -> NDArray[np.float64]:
        """The real steps' values; a price's log return instead of its level (NaN for a
        series' first price, which has none)."""
        values = batch.target[real]
        is_price = batch.kinds[real] == "price"
        if not is_price.any():
            return values
        out = values.copy()
        last = self.last_price
        for i in np.flatnonzero(is_price).tolist():
            name, value = batch.series[real][i], float(values[i])
            previous = last.get(name)
            ok = previous is not None and previous > 0 and value > 0
            out[i] = math.log(value / previous) if ok else math.nan  # type: ignore[operator]
            last[name] = value
        return out

    def _feed(
        self,
        signal: Signal,
        series: NDArray[np.object_],
        slots: NDArray[np.int64],
        values: NDArray[np.float64],
        times: NDArray[np.int64],
        found: list[Detection],
    ) -> None:
        feeds = self.feeds
        for name, slot, value, at in zip(
            series.tolist(), slots.tolist(), values.tolist(), times.tolist(), strict=True
        ):
            if not math.isfinite(value):
                continue
            key = (signal, name)
            feed = feeds.get(key)
            if feed is None:
                feed = feeds[key] = self._armed()
            statistic = self._step(feed, value)
            if statistic is None:
                continue
            feeds[key] = self._armed()  # the new regime is the new normal
            if signal == "error" and statistic < 0:
                continue  # the errors fell: the model got better, nothing to fix
            found.append(Detection(name, slot, signal, self.detector_name, statistic, at))
            self.detections[self.detector_name] += 1

    def _armed(self) -> _Feed:
        """A fresh feed: learning its reference, or (warmup 0) feeding raw values."""
        return _Feed(self.make() if self.warmup == 0 else None)

    def _step(self, feed: _Feed, value: float) -> float | None:
        """Add one value to a feed; when its detector fires, return how far the signal
        moved (recent level, in reference sds): the caller re-arms the feed."""
        if feed.warm is not None:
            feed.warm.append(value)
            if len(feed.warm) >= max(2, self.warmup):
                feed.mean, feed.var = _reference(feed.warm)
                feed.count, feed.warm = len(feed.warm), None
                feed.detector = self.make()
            return None
        mean, var, count = feed.mean, feed.var, feed.count + 1
        sd = math.sqrt(var) or 1e-12 * (1.0 + abs(mean))
        z = (value - mean) / sd if count > 2 else 0.0
        clipped = -CLIP if z < -CLIP else CLIP if z > CLIP else z
        feed.recent += self.recent_weight * (z - feed.recent)
        weight = 1.0 / count
        if weight < self.min_weight:
            weight = self.min_weight
        delta = clipped * sd if self.warmup else value - mean
        feed.mean = mean + weight * delta
        feed.var = (1.0 - weight) * (var + weight * delta * delta)
        feed.count = count
        detector = feed.detector
        detector.update(clipped if self.warmup else value)
        return feed.recent if detector.drift_detected else None

    def state_dict(self) -> dict[str, Any]:
        return {
            "feeds": pickle.dumps(self.feeds),
            "last_price": dict(self.last_price),
            "detections": dict(self.detections),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # A checkpoint from before references held bare detectors: those start afresh.
        self.feeds = checkpoint.loads(state["feeds"]) if "feeds" in state else {}
        self.last_price = dict(state["last_price"])
        self.detections = Counter(state["detections"])


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

    def apply(self, detections: list[Detection]) -> None:
        if not detections:
            return
        if self.action == "retrain" and self.request_retrain is not None:
            self._retrain(detections)
        elif self.action == "reset_state" and self.reset_slots is not None:
            self.reset_slots(np.unique(np.array([d.slot for d in detections], dtype=np.int64)))

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
