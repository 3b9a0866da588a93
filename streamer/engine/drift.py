"""Drift monitoring: detectors per series, on forecast errors and on inputs.

Per series (by name, so a series keeps its detectors when its window slot changes), one
detector watches the horizon-1 absolute error scaled by the series' running std, and one
watches the input values (for prices, their log returns: a price level wanders by
nature, a change in its returns is news); which of them run is `drift.signal`.

Each (signal, series) first learns a reference over the detector config's `warmup`
values (median and MAD, so a few wild first values, as errors scaled by a std of two
points are, do not set it), then keeps it up to date as an exponentially weighted mean
and variance (half-life `REFERENCE_HALFLIFE` values, in `drift_reference`). The
detector is fed each value standardised by that reference and clipped to +/-`CLIP`,
and the reference learns the
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

Page-Hinkley and KSWIN run on arrays, every series of a batch in one step per rank
(`streamer.engine.array_feeds`): Page-Hinkley detects exactly what one river
`PageHinkley` per (signal, series) would, KSWIN runs river's test with draws of its own
(`streamer.engine.kswin`); ADWIN keeps one river detector per (signal, series), fed one
value at a time. The checkpoint holds, per signal, the feeds on arrays as plain values
and arrays, or the river detectors pickled. A
checkpoint written while every detector was a river object (a pickled dict of `_Feed`)
is converted on load, so its detections carry on as they would have; a feed that cannot
be converted (another detector or warm-up than the config's now) re-learns its
reference, counted in one log line.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count, repeat
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from models.series_rows import Rows
from streamer.core.records import Event, ForecastErrors, StepBatch
from streamer.engine import checkpoint
from streamer.engine.drift_reference import WARMUP
from streamer.engine.river_feeds import RiverFeeds, _Feed  # _Feed: older checkpoints name it here

log = logging.getLogger(__name__)

Signal = Literal["error", "input"]
Action = Literal["alert", "retrain", "reset_state"]


@dataclass(frozen=True)
class DetectorFactory:
    """Makes one river detector per (signal, series); `warmup` values of each set the
    reference the detector's input is standardised with. With `arrays` (feeds of the
    test `build`'s detector runs, given the warm-up) the monitor runs that test on
    arrays instead."""

    build: Callable[[], Any]
    warmup: int = WARMUP
    arrays: Callable[[int], Feeds] | None = None

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


class Feeds(Protocol):
    """One signal's feeds, by series name: what `DriftMonitor` feeds values to."""

    kind: str  # what `state_dict` holds, so a checkpoint of another kind is not loaded

    def update(
        self, names: NDArray[np.object_], slots: NDArray[np.int64], values: NDArray[np.float64]
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Feed finite values, each series' in time order; the rows whose detector fired
        (those feeds re-arm) and the signal's recent level at each, in reference sds."""
        ...

    def adopt(self, name: str, feed: _Feed) -> bool:
        """Take over a feed of a checkpoint of per-value feeds; False where it cannot."""
        ...

    def take_rows(self, names: list[str]) -> Rows:
        """These series' feeds, one row each, to carry on in another process."""
        ...

    def put_rows(self, names: list[str], rows: Rows) -> None: ...

    def drop(self, names: list[str]) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class DriftMonitor:
    """Feeds each series' detectors and reports what they detect (see module doc).
    `make` builds one detector; its `warmup` sets how many values of each (signal,
    series) go to its reference first, and its `page_hinkley`, where set, has the
    monitor run that test on arrays."""

    def __init__(
        self,
        make: DetectorFactory,
        detector_name: str,
        signals: tuple[Signal, ...] = ("error", "input"),
    ) -> None:
        self.make = make
        self.detector_name = detector_name
        self.signals = signals
        self.warmup = make.warmup
        self.feeds: dict[Signal, Feeds] = {s: self._feeds() for s in signals}
        self.last_price: dict[str, float] = {}  # for price series' log returns
        self.detections: Counter[str] = Counter()  # by detector name, for the metrics

    def _feeds(self) -> Feeds:
        if self.make.arrays is not None:
            return self.make.arrays(self.warmup)
        return RiverFeeds(self.make)

    def update(self, batch: StepBatch, errors: ForecastErrors | None) -> list[Detection]:
        """Feed the batch's real input values and its horizon-1 errors, in time order."""
        found: list[Detection] = []
        if "input" in self.signals and len(batch):
            real = ~batch.filled
            names = batch.series[real]
            self._feed(
                "input",
                names,
                batch.slots[real],
                self._inputs(batch, real, names),
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
        return found

    def _inputs(
        self, batch: StepBatch, real: NDArray[np.bool_], names: NDArray[np.object_]
    ) -> NDArray[np.float64]:
        """The real steps' values (`names` their series); a price's log return instead
        of its level (NaN for a series' first price, which has none, and where either
        price is not positive)."""
        values = batch.target[real]
        rows = np.flatnonzero(batch.kinds[real] == "price")
        if not len(rows):
            return values
        # Each price row's series as the row where it first comes: a batch has a series'
        # rows together (by slot, then step), but one made of two has them in two runs.
        series = names[rows]
        first: dict[str, int] = {}
        code = np.fromiter(map(first.setdefault, series.tolist(), count()), np.int64, len(rows))
        if np.any(code[1:] < code[:-1]):
            order = np.argsort(code, kind="stable")  # each series' rows together, in order
            rows, series, code = rows[order], series[order], code[order]
        prices = values[rows]
        starts = np.flatnonzero(np.r_[True, code[1:] != code[:-1]])
        ends = np.r_[starts[1:] - 1, len(rows) - 1]
        last = self.last_price
        previous = np.empty(len(rows))
        previous[1:] = prices[:-1]
        previous[starts] = list(map(last.get, series[starts].tolist(), repeat(math.nan)))
        last.update(zip(series[ends].tolist(), prices[ends].tolist(), strict=True))
        ok = (previous > 0) & (prices > 0)  # False where there is no previous (NaN)
        returns = np.full(len(rows), math.nan)
        # math.log, not np.log: the same value on every CPU (numpy's SIMD log can
        # differ from the C library's in the last bit).
        returns[ok] = list(map(math.log, (prices[ok] / previous[ok]).tolist()))
        out = values.copy()
        out[rows] = returns
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
        finite = np.isfinite(values)
        if not finite.all():
            series, slots, times = series[finite], slots[finite], times[finite]
            values = values[finite]
        if not len(values):
            return
        rows, levels = self.feeds[signal].update(series, slots, values)
        order = np.argsort(rows, kind="stable")  # in row order, as the rows came
        for row, level in zip(rows[order].tolist(), levels[order].tolist(), strict=True):
            if signal == "error" and level < 0:
                continue  # the errors fell: the model got better, nothing to fix
            found.append(
                Detection(
                    series[row], int(slots[row]), signal, self.detector_name, level, int(times[row])
                )
            )
            self.detections[self.detector_name] += 1

    def take_rows(self, names: list[str]) -> Rows:
        """These series' feeds and last prices, one row each (`models.series_rows`)."""
        rows: Rows = {signal: feeds.take_rows(names) for signal, feeds in self.feeds.items()}
        last = self.last_price
        rows["last_price"] = np.array([last.get(name, math.nan) for name in names])
        return rows

    def put_rows(self, names: list[str], rows: Rows) -> None:
        for signal, feeds in self.feeds.items():
            feeds.put_rows(names, rows[signal])
        self.drop_prices(names)
        prices = rows["last_price"].tolist()
        self.last_price.update((n, p) for n, p in zip(names, prices, strict=True) if p == p)

    def drop(self, names: list[str]) -> None:
        """Forget these series (they moved to another process)."""
        for feeds in self.feeds.values():
            feeds.drop(names)
        self.drop_prices(names)

    def drop_prices(self, names: list[str]) -> None:
        for name in names:
            self.last_price.pop(name, None)

    def state_dict(self) -> dict[str, Any]:
        return {
            "signal_feeds": {signal: feeds.state_dict() for signal, feeds in self.feeds.items()},
            "last_price": dict(self.last_price),
            "detections": dict(self.detections),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.feeds = {s: self._feeds() for s in self.signals}
        if "signal_feeds" in state:
            for signal, saved in state["signal_feeds"].items():
                feeds = self.feeds.get(signal)
                if feeds is None:
                    continue
                if saved["kind"] == feeds.kind:
                    feeds.load_state_dict(saved)
                else:
                    log.warning(
                        "the checkpoint's %s drift feeds are of another detector (%s): "
                        "they re-learn their references",
                        signal,
                        saved["kind"],
                    )
        elif "feeds" in state:
            self._adopt(checkpoint.loads(state["feeds"]))
        # else: a checkpoint from before references held bare detectors: those start afresh.
        self.last_price = dict(state["last_price"])
        self.detections = Counter(state["detections"])

    def _adopt(self, old: dict[tuple[Signal, str], _Feed]) -> None:
        """Convert the per-value feeds of an older checkpoint (see module doc)."""
        refused = 0
        for (signal, name), feed in old.items():
            feeds = self.feeds.get(signal)
            if feeds is not None and not feeds.adopt(name, feed):
                refused += 1
        if refused:
            log.warning(
                "%d of the checkpoint's %d drift feeds are not of a %s detector with warmup "
                "%d: they re-learn their references",
                refused,
                len(old),
                self.detector_name,
                self.warmup,
            )
