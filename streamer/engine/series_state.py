"""A pipeline's per-series state as one record per series, to move series between
replicas.

A series' record holds its rows of every stateful part (window, forecaster, outcomes,
drift feeds; `models.series_rows`), so a replica that takes a partition over carries
on with each of its series exactly where the last owner stood: same open steps, same
hidden state, same scale, same pending forecasts and residuals. Records are pickled
(the parts' rows are numpy arrays, and river objects for river's models and
detectors) with a format number, so a record of another layout is refused, not
misread. Only replicas of the same settings read each other's records.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from typing import Any

from models import series_rows
from models.base import Forecaster, Scorer
from streamer.engine import checkpoint
from streamer.engine.drift import DriftMonitor
from streamer.engine.window import WindowBuffer

FORMAT = 1


class SeriesStates:
    """Takes, puts and drops the state of series across a pipeline's parts."""

    def __init__(
        self,
        window: WindowBuffer,
        forecaster: Forecaster,
        outcomes: Scorer | None,
        drift: DriftMonitor | None,
    ) -> None:
        self.window = window
        self.forecaster = forecaster
        self.outcomes = outcomes
        self.drift = drift

    def take(self, names: list[str], now: float) -> list[bytes]:
        """One record per live series named (now: the window's processing time)."""
        if not names:
            return []
        slots, window_rows = self.window.take_series(names, now)
        tree = {
            "window": window_rows,
            "forecaster": self.forecaster.take_rows(slots),
            "outcomes": series_rows.optional(self.outcomes, lambda o: o.take_rows(slots)),
            "drift": series_rows.optional(self.drift, lambda d: d.take_rows(names)),
        }
        return [
            pickle.dumps({"format": FORMAT, **part}, protocol=5)
            for part in series_rows.split(tree, len(names))
        ]

    def put(self, names: Sequence[str], records: Sequence[bytes], now: float) -> None:
        """Carry on with these series from their records (replacing any state held)."""
        chunk = max(1, self.window.max_series // 2)  # so that none evicts another
        for start in range(0, len(names), chunk):
            part = list(names[start : start + chunk])
            trees = [_record(r) for r in records[start : start + chunk]]
            self._put(part, series_rows.stack(trees), now)

    def _put(self, names: list[str], tree: dict[str, Any], now: float) -> None:
        slots = self.window.put_series(names, tree["window"], now)
        self.forecaster.put_rows(slots, tree["forecaster"])
        if self.outcomes is not None:
            self.outcomes.put_rows(slots, tree["outcomes"])
        if self.drift is not None:
            self.drift.put_rows(names, tree["drift"])

    def drop(self, names: list[str]) -> None:
        """Forget these series: another replica carries on with them. Their slots'
        model state is reset by the next series that takes a slot (it starts fresh)."""
        live = [name for name in names if name in self.window.slot_of]
        self.window.drop_series(live)
        if self.drift is not None:
            self.drift.drop(names)


def _record(blob: bytes) -> dict[str, Any]:
    tree: dict[str, Any] = checkpoint.loads(blob)
    if tree.get("format") != FORMAT:
        raise ValueError(
            f"a series state record of format {tree.get('format')!r}; this version reads "
            f"format {FORMAT}: restore with the version that wrote it, or start afresh"
        )
    del tree["format"]
    return tree
