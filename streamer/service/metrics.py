"""The daemon's Prometheus metrics, read from the pipeline's snapshot when scraped.

Counters the pipeline keeps anyway (events, rejections, forecasts, retrains, drifts,
lag, live series, model version) are collected at scrape time from the snapshot it
publishes after each micro-batch, so the hot path pays nothing for them and the HTTP
thread touches no live state; the sink write latency histogram and the retry counter
are observed by the sink writer as it writes (`Metrics` is its `SinkObserver`). Each
daemon has a registry of its own (tests run several).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from streamer.engine.snapshot import GroupStatus, Snapshot

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _SnapshotCollector(Collector):
    def __init__(self, read: Callable[[], Snapshot]) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        s = self.read()
        yield _counter("streamer_events_in", "Records read from the sources.", s.events_in)
        rejected = CounterMetricFamily(
            "streamer_rejected", "Records rejected, by reason.", labels=["reason"]
        )
        for reason, n in sorted(s.rejected.items()):
            rejected.add_metric([reason], n)
        yield rejected
        yield _counter("streamer_steps_closed", "Per-series steps closed.", s.steps_closed)
        yield _counter(
            "streamer_forecasts_out", "Forecasts written (one per horizon).", s.forecasts_out
        )
        yield _gauge("streamer_live_series", "Series held in the window.", s.live_series)
        lag = GaugeMetricFamily(
            "streamer_consumer_lag",
            "Records behind the end of each partition (at the last stats report).",
            labels=["source", "partition"],
        )
        for (source, partition), n in sorted(s.lag.items()):
            lag.add_metric([source, partition], n)
        yield lag
        if s.model_version is not None:
            yield _gauge(
                "streamer_model_version",
                "Promotions of the weights behind the latest forecasts.",
                s.model_version,
            )
        if s.retrains is not None:
            retrains = CounterMetricFamily(
                "streamer_retrains", "Retrain attempts, by outcome.", labels=["outcome"]
            )
            for outcome, n in sorted(s.retrains.items()):
                retrains.add_metric([outcome], n)
            yield retrains
        if s.drifts is not None:
            drifts = CounterMetricFamily(
                "streamer_drifts", "Drift detections, by detector.", labels=["detector"]
            )
            for detector, n in sorted(s.drifts.items()):
                drifts.add_metric([detector], n)
            yield drifts
        if s.group is not None:
            yield from _group(s.group)


def _group(g: GroupStatus) -> Iterator[Metric]:
    """This replica's share of its group: what it reads, restores and commits."""
    owned = GaugeMetricFamily(
        "streamer_partition_owned",
        "1 for each input partition this replica reads (restored).",
        labels=["partition"],
    )
    for partition in g.owned:
        owned.add_metric([partition], 1)
    yield owned
    yield _gauge(
        "streamer_partitions_restoring",
        "Partitions assigned whose series' state is not restored yet.",
        len(g.restoring),
    )
    yield _counter(
        "streamer_restored_series", "Series restored from the changelog.", g.restored_series
    )
    yield _counter(
        "streamer_restore_seconds", "Time spent restoring partitions.", g.restore_seconds
    )
    yield _gauge(
        "streamer_changelog_pending",
        "Series whose state changed since the last changelog commit (the changelog lag).",
        g.changelog_pending,
    )
    yield _counter(
        "streamer_changelog_commits", "Changelog transactions committed.", g.changelog_commits
    )
    if g.trainer is not None:
        yield _gauge(
            "streamer_trainer", "1 while this replica trains the group's model.", g.trainer
        )


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


class Metrics:
    """A registry with the pipeline's metrics, and the observer of the sink writer."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.sink_latency = Histogram(
            "streamer_sink_write_seconds",
            "Time for a sink to acknowledge one micro-batch's output.",
            ["sink"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.sink_retries = Counter(
            "streamer_sink_retries",
            "Sink writes retried after an error.",
            ["sink"],
            registry=self.registry,
        )

    def collect_from(self, read: Callable[[], Snapshot]) -> Metrics:
        """Collect the pipeline's counters from the snapshots `read` returns."""
        self.registry.register(_SnapshotCollector(read))
        return self

    def written(self, sink: str, seconds: float) -> None:
        self.sink_latency.labels(sink).observe(seconds)

    def retried(self, sink: str) -> None:
        self.sink_retries.labels(sink).inc()
