"""Drift monitoring: river.drift detectors per series, on forecast errors and on inputs.

Per series (by name, so a series keeps its detectors when its window slot changes), one
detector watches the horizon-1 absolute error scaled by the series' running std (so
one threshold fits series of any scale; a change for the better, as after a retrain,
is not reported where the detector says which way it went), and one watches the input values (for
prices, their log returns: a price level wanders by nature, a change in its returns is
news); which of them run is `drift.signal`. A detection becomes a `drift` event (series, detector,
signal; the detector's statistic as `value`), a log line, and an action for the
pipeline (`drift.on_drift`): `retrain` asks for a retrain, at most one per
`retrain_cooldown` however many series drift; `reset_state` has the forecaster forget
that series' state and scale; `alert` records only. Detectors are pickled into the
checkpoint with everything else.
"""

from __future__ import annotations

import logging
import math
import pickle
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from streamer.records import NS_PER_S, Event, ForecastErrors, StepBatch

log = logging.getLogger(__name__)

Signal = Literal["error", "input"]
Action = Literal["alert", "retrain", "reset_state"]


def make_detector(config: Any) -> Callable[[], Any]:
    """A factory of river detectors for a `drift.detector` config section."""
    from river import drift

    if config.type == "adwin":
        return lambda: drift.ADWIN(delta=config.delta)  # type: ignore[no-untyped-call]
    if config.type == "page_hinkley":
        return lambda: drift.PageHinkley(
            min_instances=config.min_instances,
            delta=config.delta,
            threshold=config.threshold,
            alpha=config.alpha,
        )
    return lambda: drift.KSWIN(
        alpha=config.alpha,
        window_size=config.window_size,
        stat_size=config.stat_size,
        seed=config.seed,
    )


@dataclass(frozen=True)
class Detection:
    """One series' detector fired: which, on what, when, and its statistic."""

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


class DriftMonitor:
    """Feeds each series' detectors and reports what they detect (see module doc)."""

    def __init__(
        self,
        make: Callable[[], Any],
        detector_name: str,
        signals: tuple[Signal, ...] = ("error", "input"),
    ) -> None:
        self.make = make
        self.detector_name = detector_name
        self.signals = signals
        self.detectors: dict[tuple[Signal, str], Any] = {}
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
            names = sorted({d.series for d in found})
            log.warning(
                "drift in %d series (%s%s), %s detector",
                len(names),
                ", ".join(names[:5]),
                ", ..." if len(names) > 5 else "",
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
        detectors, make = self.detectors, self.make
        for name, slot, value, at in zip(
            series.tolist(), slots.tolist(), values.tolist(), times.tolist(), strict=True
        ):
            if not math.isfinite(value):
                continue
            key = (signal, name)
            detector = detectors.get(key)
            if detector is None:
                detector = detectors[key] = make()
            before = getattr(detector, "estimation", None)
            detector.update(value)
            if detector.drift_detected:
                statistic = float(getattr(detector, "estimation", value))
                if signal == "error" and before is not None and statistic < before:
                    continue  # the errors fell: the model got better, nothing to fix
                found.append(Detection(name, slot, signal, self.detector_name, statistic, at))
                self.detections[self.detector_name] += 1

    def state_dict(self) -> dict[str, Any]:
        return {
            "detectors": pickle.dumps(self.detectors),
            "last_price": dict(self.last_price),
            "detections": dict(self.detections),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.detectors = pickle.loads(state["detectors"])
        self.last_price = dict(state["last_price"])
        self.detections = Counter(state["detections"])


class DriftResponse:
    """What the pipeline does about detections: `on_drift`, with a retrain cooldown
    counted in event time (so a replay and a live run decide alike)."""

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

    def apply(self, detections: list[Detection]) -> None:
        if not detections:
            return
        if self.action == "retrain" and self.request_retrain is not None:
            at = max(d.time_ns for d in detections)
            if self.last_retrain_ns is None or at - self.last_retrain_ns >= self.cooldown_ns:
                self.last_retrain_ns = at
                self.retrains_requested += 1
                self.request_retrain("drift")
        elif self.action == "reset_state" and self.reset_slots is not None:
            self.reset_slots(np.unique(np.array([d.slot for d in detections], dtype=np.int64)))

    def state_dict(self) -> dict[str, Any]:
        return {"last_retrain_ns": self.last_retrain_ns}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last_retrain_ns = state["last_retrain_ns"]
