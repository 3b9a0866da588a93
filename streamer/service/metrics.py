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
    """The pipelines' counters at scrape time; with several streams, each sample has a
    `stream` label."""

    def __init__(self, reads: dict[str, Callable[[], Snapshot]]) -> None:
        self.reads = reads
        self.named = set(reads) != {""}

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for stream, read in self.reads.items():
            for family, labels, value in _samples(read()):
                name, kind, doc, label_names = family
                if self.named:
                    label_names, labels = ("stream", *label_names), (stream, *labels)
                made = families.get(name)
                if made is None:
                    make = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
                    made = families[name] = make(name, doc, labels=list(label_names))
                made.add_metric(list(labels), value)  # type: ignore[attr-defined]
        yield from families.values()


Family = tuple[str, str, str, tuple[str, ...]]  # name, counter or gauge, help, label names


def _samples(s: Snapshot) -> Iterator[tuple[Family, tuple[str, ...], float]]:
    """Every sample of one pipeline's snapshot, with its family."""
    yield ("streamer_events_in", "counter", "Records read from the sources.", ()), (), s.events_in
    rejected = ("streamer_rejected", "counter", "Records rejected, by reason.", ("reason",))
    for reason, n in sorted(s.rejected.items()):
        yield rejected, (reason,), n
    yield ("streamer_steps_closed", "counter", "Per-series steps closed.", ()), (), s.steps_closed
    forecasts = ("streamer_forecasts_out", "counter", "Forecasts written (one per horizon).", ())
    yield forecasts, (), s.forecasts_out
    yield ("streamer_live_series", "gauge", "Series held in the window.", ()), (), s.live_series
    lag = (
        "streamer_consumer_lag",
        "gauge",
        "Records behind the end of each partition (at the last stats report).",
        ("source", "partition"),
    )
    for (source, partition), n in sorted(s.lag.items()):
        yield lag, (source, partition), n
    if s.model_version is not None:
        doc = "Promotions of the weights behind the latest forecasts."
        yield ("streamer_model_version", "gauge", doc, ()), (), s.model_version
    if s.retrains is not None:
        retrains = ("streamer_retrains", "counter", "Retrain attempts, by outcome.", ("outcome",))
        for outcome, n in sorted(s.retrains.items()):
            yield retrains, (outcome,), n
    if s.drifts is not None:
        drifts = ("streamer_drifts", "counter", "Drift detections, by detector.", ("detector",))
        for detector, n in sorted(s.drifts.items()):
            yield drifts, (detector,), n
    if s.group is not None:
        yield from _group(s.group)


def _group(g: GroupStatus) -> Iterator[tuple[Family, tuple[str, ...], float]]:
    """This replica's share of its group: what it reads, restores and commits."""
    owned = (
        "streamer_partition_owned",
        "gauge",
        "1 for each input partition this replica reads (restored).",
        ("partition",),
    )
    for partition in g.owned:
        yield owned, (partition,), 1
    doc = "Partitions assigned whose series' state is not restored yet."
    yield ("streamer_partitions_restoring", "gauge", doc, ()), (), len(g.restoring)
    doc = "Series restored from the changelog."
    yield ("streamer_restored_series", "counter", doc, ()), (), g.restored_series
    doc = "Time spent restoring partitions."
    yield ("streamer_restore_seconds", "counter", doc, ()), (), g.restore_seconds
    doc = "Series whose state changed since the last changelog commit (the changelog lag)."
    yield ("streamer_changelog_pending", "gauge", doc, ()), (), g.changelog_pending
    doc = "Changelog transactions committed."
    yield ("streamer_changelog_commits", "counter", doc, ()), (), g.changelog_commits
    if g.trainer is not None:
        doc = "1 while this replica trains the group's model."
        yield ("streamer_trainer", "gauge", doc, ()), (), g.trainer


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

    def collect_from(
        self, read: Callable[[], Snapshot] | dict[str, Callable[[], Snapshot]]
    ) -> Metrics:
        """Collect the pipeline's counters from the snapshots `read` returns; or, for a
        config of several streams, each stream's, labelled with its name."""
        self.registry.register(_SnapshotCollector(read if isinstance(read, dict) else {"": read}))
        return self

    def written(self, sink: str, seconds: float) -> None:
        self.sink_latency.labels(sink).observe(seconds)

    def retried(self, sink: str) -> None:
        self.sink_retries.labels(sink).inc()
