"""Drift feeds with one river detector each, fed one value at a time (ADWIN).

The per-value path of `streamer.engine.drift` (see its doc): each (signal, series) learns
its reference, then feeds its detector each value standardised and clipped.
"""

from __future__ import annotations

import copy
import math
import pickle
from array import array
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from models import series_rows
from models.series_rows import Rows
from streamer.engine import checkpoint
from streamer.engine.drift_reference import CLIP, MIN_WEIGHT, RECENT_WEIGHT, references

if TYPE_CHECKING:
    from streamer.engine.drift import DetectorFactory


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


class RiverFeeds:
    """Feeds with one river detector each, fed one value at a time (ADWIN)."""

    kind = "river"

    def __init__(self, make: DetectorFactory) -> None:
        self.make = make
        self.feeds: dict[str, _Feed] = {}

    def update(
        self, names: NDArray[np.object_], slots: NDArray[np.int64], values: NDArray[np.float64]
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        feeds = self.feeds
        fired: list[int] = []
        levels: list[float] = []
        for row, (name, value) in enumerate(zip(names.tolist(), values.tolist(), strict=True)):
            feed = feeds.get(name)
            if feed is None:
                feed = feeds[name] = self._armed()
            level = self._step(feed, value)
            if level is not None:
                feeds[name] = self._armed()  # the new regime is the new normal
                fired.append(row)
                levels.append(level)
        return np.array(fired, dtype=np.int64), np.array(levels, dtype=np.float64)

    def _armed(self) -> _Feed:
        """A fresh feed: learning its reference, or (warmup 0) feeding raw values."""
        return _Feed(self.make() if self.make.warmup == 0 else None)

    def _step(self, feed: _Feed, value: float) -> float | None:
        """Add one value to a feed; when its detector fires, return how far the signal
        moved (recent level, in reference sds): the caller re-arms the feed."""
        warmup = self.make.warmup
        if feed.warm is not None:
            feed.warm.append(value)
            if len(feed.warm) >= max(2, warmup):
                means, variances = references(np.asarray(feed.warm, dtype=np.float64)[None])
                feed.mean, feed.var = float(means[0]), float(variances[0])
                feed.count, feed.warm = len(feed.warm), None
                feed.detector = self.make()
            return None
        mean, var, count = feed.mean, feed.var, feed.count + 1
        sd = math.sqrt(var) or 1e-12 * (1.0 + abs(mean))
        z = (value - mean) / sd if count > 2 else 0.0
        clipped = -CLIP if z < -CLIP else CLIP if z > CLIP else z
        feed.recent += RECENT_WEIGHT * (z - feed.recent)
        weight = 1.0 / count
        if weight < MIN_WEIGHT:
            weight = MIN_WEIGHT
        delta = clipped * sd if warmup else value - mean
        feed.mean = mean + weight * delta
        feed.var = (1.0 - weight) * (var + weight * delta * delta)
        feed.count = count
        detector = feed.detector
        detector.update(clipped if warmup else value)
        return feed.recent if detector.drift_detected else None

    def take_rows(self, names: list[str]) -> Rows:
        """These series' feeds (None for series not fed yet)."""
        return {"feed": series_rows.objects([self.feeds.get(name) for name in names])}

    def put_rows(self, names: list[str], rows: Rows) -> None:
        for name, feed in zip(names, rows["feed"], strict=True):
            if feed is None:
                self.feeds.pop(name, None)
            else:
                self.feeds[name] = copy.deepcopy(feed)

    def drop(self, names: list[str]) -> None:
        for name in names:
            self.feeds.pop(name, None)

    def adopt(self, name: str, feed: _Feed) -> bool:
        self.feeds[name] = feed
        return True

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "feeds": pickle.dumps(self.feeds)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.feeds = checkpoint.loads(state["feeds"])
