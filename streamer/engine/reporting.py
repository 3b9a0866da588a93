"""What the loop tells of its work: counters, rejected records (to the dead letter and
to rate-limited log lines), the consumer lag with its `streamer_stats` event, and
progress lines."""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from connectors.base import DeadLetter, Source
from streamer.core.records import NON_FINITE, NS_PER_S, Event, Rejection
from streamer.engine.window import WindowBuffer

log = logging.getLogger("streamer.engine.pipeline")  # the loop's lines, under its name


@dataclass
class Counters:
    """What the daemon has done since it started."""

    events_in: int = 0
    observations: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    steps_closed: int = 0
    forecasts_out: int = 0
    batches: int = 0
    checkpoints: int = 0

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


class Rejections:
    """Rejected records go to the dead letter and are counted by reason; a log line says
    how many per reason at most once per `log_every` seconds, with an example."""

    def __init__(
        self, counters: Counters, dead_letter: DeadLetter | None, log_every: float
    ) -> None:
        self.counters = counters
        self.dead_letter = dead_letter
        self.log_every = log_every
        self._last_logged: dict[str, float] = {}
        self._unlogged: Counter[str] = Counter()

    def add(self, rejections: list[Rejection], now: float) -> None:
        if not rejections:
            return
        if self.dead_letter:
            self.dead_letter.write(rejections)
        for rejection in rejections:
            self.counters.rejected[rejection.reason] += 1
            self._unlogged[rejection.reason] += 1
        for rejection in rejections:
            reason = rejection.reason
            if now - self._last_logged.get(reason, -math.inf) >= self.log_every:
                where = rejection.position
                log.warning(
                    "rejected %d record(s) as %s since the last report; e.g. %s%s",
                    self._unlogged[reason],
                    reason,
                    rejection.detail,
                    f" ({where.source} {where.partition}@{where.offset})" if where else "",
                )
                self._last_logged[reason] = now
                self._unlogged[reason] = 0


class Reporter:
    """Every `stats_every` seconds (None: never) the consumer lag and the partitions each
    source reads are refreshed and a `streamer_stats` event made; every
    `progress_every` seconds a progress line."""

    def __init__(
        self, tags: Mapping[str, str], stats_every: float | None, progress_every: float, now: float
    ) -> None:
        self.tags = dict(tags)  # of each streamer_stats event: instance (and stream)
        self.stats_every = stats_every
        self.progress_every = progress_every
        self._last_stats = now
        self._last_progress = now
        # By (source, partition): the end offset minus the next one to process. Replaced,
        # never changed, so that a published snapshot can share it.
        self.lag: Mapping[tuple[str, str], int] = {}
        # By source: the partitions it reads (those with an end offset), likewise replaced.
        self.partitions: Mapping[str, tuple[str, ...]] = {}

    def stats(
        self,
        now: float,
        sources: Sequence[Source],
        positions: Mapping[str, Mapping[str, int]],
        counters: Counters,
        live_series: int,
        take_latency: Callable[[], tuple[float, int]],
        force: bool = False,
    ) -> Event | None:
        """The streamer_stats event, when one is due."""
        every = self.stats_every
        if every is None or (not force and now - self._last_stats < every):
            return None
        self._last_stats = now
        lag = dict(self.lag)
        for source in sources:
            ends = source.end_offsets()
            if not ends:
                continue  # no offsets, or none known now (a broker away): keep what was
            self.partitions = {**self.partitions, source.name: tuple(sorted(ends))}
            done = positions[source.name]
            # Partitions given up in a rebalance leave the lag with the assignment.
            lag = {key: n for key, n in lag.items() if key[0] != source.name}
            for partition, end in ends.items():
                if partition in done:
                    lag[(source.name, partition)] = max(0, end - done[partition])
        self.lag = lag
        fields: dict[str, float | int | bool | str] = {
            "events_in": counters.events_in,
            "rejected": counters.rejected_total,
            "forecasts_out": counters.forecasts_out,
            "live_series": live_series,
            "lag": sum(lag.values()),
        }
        owned = sorted(p for partitions in self.partitions.values() for p in partitions)
        if owned:  # which instance reads what: in a group of replicas, it moves
            fields["partitions"] = len(owned)
            fields["partitions_owned"] = ",".join(owned)
        seconds, writes = take_latency()
        if writes:
            fields["latency_ms"] = 1000.0 * seconds / writes
        return Event("streamer_stats", dict(self.tags), fields, int(now * NS_PER_S))

    def progress(
        self, now: float, counters: Counters, live_series: int, force: bool = False
    ) -> None:
        if not force and now - self._last_progress < self.progress_every:
            return
        self._last_progress = now
        c = counters
        log.info(
            "events %d, rejected %d, series %d, steps %d, forecasts %d",
            c.events_in,
            c.rejected_total,
            live_series,
            c.steps_closed,
            c.forecasts_out,
        )


def unrepresentable(window: WindowBuffer) -> list[Rejection]:
    """Steps the window could not aggregate, as rejections (taken from the window):
    closed as if empty, never dropped without a word."""
    out = []
    for series, start_ns, count in window.unrepresentable:
        at = np.datetime64(start_ns, "ns")
        detail = (
            f"the {window.aggregation} of {count} values of series {series!r} in the "
            f"step at {at}Z is beyond a float (1.8e308); the step is left empty"
        )
        raw = json.dumps({"series": series, "step": f"{at}Z", "events": count}).encode()
        out.append(Rejection(NON_FINITE, detail, raw, None))
    window.unrepresentable = []
    return out
