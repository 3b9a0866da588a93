"""The daemon's Prometheus metrics, read from the pipeline when scraped.

Counters the pipeline keeps anyway (events, rejections, forecasts, retrains, drifts,
lag, live series, model version) are collected at scrape time by a custom collector,
so the hot path pays nothing for them; the sink write latency histogram and the retry
counter are observed by the sink writer as it writes. Each daemon has a registry of its
own (tests run several).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from streamer.engine.pipeline import Pipeline

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _PipelineCollector(Collector):
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def collect(self) -> Iterator[Metric]:
        p = self.pipeline
        c = p.counters
        yield _counter("streamer_events_in", "Records read from the sources.", c.events_in)
        rejected = CounterMetricFamily(
            "streamer_rejected", "Records rejected, by reason.", labels=["reason"]
        )
        for reason, n in sorted(c.rejected.items()):
            rejected.add_metric([reason], n)
        yield rejected
        yield _counter("streamer_steps_closed", "Per-series steps closed.", c.steps_closed)
        yield _counter(
            "streamer_forecasts_out", "Forecasts written (one per horizon).", c.forecasts_out
        )
        yield _gauge("streamer_live_series", "Series held in the window.", p.window.live_series)
        lag = GaugeMetricFamily(
            "streamer_consumer_lag",
            "Records behind the end of each partition (at the last stats report).",
            labels=["source", "partition"],
        )
        for (source, partition), n in sorted(p.lag.items()):
            lag.add_metric([source, partition], n)
        yield lag
        version = getattr(_recurrent(p.forecaster, p.retrainer), "version", None)
        if version is not None:
            yield _gauge("streamer_model_version", "Promotions of the model's weights.", version)
        if p.retrainer is not None:
            retrains = CounterMetricFamily(
                "streamer_retrains", "Retrain attempts, by outcome.", labels=["outcome"]
            )
            for outcome, n in sorted(getattr(p.retrainer, "outcomes", {}).items()):
                retrains.add_metric([outcome], n)
            yield retrains
        if p.drift is not None:
            drifts = CounterMetricFamily(
                "streamer_drifts", "Drift detections, by detector.", labels=["detector"]
            )
            for detector, n in sorted(p.drift.detections.items()):
                drifts.add_metric([detector], n)
            yield drifts


def _recurrent(forecaster: Any, retrainer: Any) -> Any:
    """The recurrent model: the one its retrainer trains (inside a cold-start wrapper or
    an ensemble), else the one inside a cold-start wrapper, or the forecaster itself."""
    trained = getattr(retrainer, "model", None)
    return trained if trained is not None else getattr(forecaster, "model", forecaster)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


class Metrics:
    """A registry with the pipeline's metrics; hooks the sink writer's observations."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_PipelineCollector(pipeline))
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
        pipeline.observe_sink_write = lambda sink, s: self.sink_latency.labels(sink).observe(s)
        pipeline.writer.on_retry = lambda sink: self.sink_retries.labels(sink).inc()
