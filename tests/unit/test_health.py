"""The HTTP endpoint: liveness that notices a stalled loop, readiness that names what is
not ready, Prometheus metrics that match the pipeline's counters; and streamer_stats."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from connectors.base import Output
from connectors.codecs import Decoder
from connectors.memory import MemorySink, MemorySource
from models.baseline import LastValue
from streamer.core.errors import SinkError
from streamer.core.records import NS_PER_S
from streamer.engine.pipeline import Pipeline, PipelineSettings
from streamer.engine.reporting import Counters, Reporter
from streamer.engine.snapshot import Snapshot, SourceStatus, WriterStatus
from streamer.engine.window import WindowBuffer
from streamer.service.health import HttpEndpoint, readiness
from streamer.service.metrics import Metrics

T0 = 1_700_000_000


class Source(MemorySource):
    is_ready = True

    @property
    def ready(self) -> bool:
        return self.is_ready


class FlakySink(MemorySink):
    """Fails its first write, then takes everything."""

    failures = 1

    def write(self, output: Output) -> None:
        if self.failures:
            self.failures -= 1
            raise SinkError("down for a moment")
        super().write(output)


def payloads() -> list[bytes]:
    good = [
        b'{"id":"s%d","value":%d,"ts":%d}' % (k, t, (T0 + t) * 1000)
        for t in range(30)
        for k in range(4)
    ]
    return good + [b"{not json"] * 3


@pytest.fixture
def served() -> Iterator[tuple[Pipeline, HttpEndpoint, Source]]:
    source = Source("src", payloads())
    metrics = Metrics()
    pipeline = Pipeline(
        sources=[(source, Decoder(kind="sensor", series_field="id", value_field="value"))],
        window=WindowBuffer(step_ns=NS_PER_S, max_series=10),
        forecaster=LastValue(2),
        sinks=[FlakySink()],
        settings=PipelineSettings(
            max_batch=20, max_wait=0.0, sink_retry_wait=0.01, sink_names=("flaky",)
        ),
        observer=metrics,
    )
    metrics.collect_from(lambda: pipeline.snapshot)
    endpoint = HttpEndpoint(
        "127.0.0.1:0", lambda: (pipeline.snapshot, pipeline.writer.status), metrics, 5.0
    ).start()
    yield pipeline, endpoint, source
    endpoint.stop()
    pipeline.close()


def get(endpoint: HttpEndpoint, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{endpoint.port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_match_what_the_pipeline_did(served: Any) -> None:
    pipeline, endpoint, _ = served
    pipeline.restore()
    while not pipeline.sources[0][0].exhausted:
        pipeline.step()
    pipeline.checkpoint()  # waits for the writer

    status, text = get(endpoint, "/metrics")
    assert status == 200
    m = samples(text)
    c = pipeline.counters
    assert m[("streamer_events_in_total", ())] == c.events_in == 123
    assert m[("streamer_rejected_total", (("reason", "malformed"),))] == 3
    assert m[("streamer_forecasts_out_total", ())] == c.forecasts_out > 0
    assert m[("streamer_live_series", ())] == 4
    writes = m[("streamer_sink_write_seconds_count", (("sink", "flaky"),))]
    assert writes == len(pipeline.sinks[0].outputs) > 0
    assert m[("streamer_sink_retries_total", (("sink", "flaky"),))] == 1


def test_healthz_turns_503_when_the_loop_stalls(served: Any) -> None:
    pipeline, endpoint, _ = served
    pipeline.step()
    assert get(endpoint, "/healthz")[0] == 200
    deadline = time.monotonic() + 5
    while pipeline.writer.failing and time.monotonic() < deadline:  # the flaky sink's retry
        time.sleep(0.01)
    # No micro-batch for 6 s > stall_after.
    pipeline.snapshot = replace(pipeline.snapshot, last_step_at=time.monotonic() - 6.0)
    status, body = get(endpoint, "/healthz")
    assert status == 503
    assert json.loads(body)["status"] == "stalled"


def test_healthz_stays_200_while_the_loop_waits_on_a_sink_outage(served: Any) -> None:
    pipeline, endpoint, _ = served
    pipeline.step()
    # No micro-batch for 6 s > stall_after ...
    pipeline.snapshot = replace(pipeline.snapshot, last_step_at=time.monotonic() - 6.0)
    # ... because the sink is down, and being retried.
    pipeline.writer.status = WriterStatus(True, "down", time.monotonic())
    status, body = get(endpoint, "/healthz")
    assert status == 200
    assert json.loads(body)["status"] == "waiting on sinks"
    # The writer stopped trying.
    pipeline.writer.status = WriterStatus(True, "down", time.monotonic() - 6.0)
    assert get(endpoint, "/healthz")[0] == 503


def test_readyz_says_which_check_fails(served: Any) -> None:
    pipeline, endpoint, source = served
    status, body = get(endpoint, "/readyz")
    assert status == 503
    assert json.loads(body)["checks"] == {"sources": True, "model": False, "sinks": True}
    pipeline.restore()
    assert get(endpoint, "/readyz")[0] == 200
    source.is_ready = False  # e.g. partitions revoked, waiting for a rebalance
    assert get(endpoint, "/readyz")[0] == 200  # what the last micro-batch saw ...
    pipeline.step()  # ... until the next one publishes what it sees
    status, body = get(endpoint, "/readyz")
    assert status == 503
    assert json.loads(body)["checks"]["sources"] is False
    assert get(endpoint, "/nowhere")[0] == 404


def test_a_streamer_stats_point_is_written_every_stats_period() -> None:
    now = [float(T0)]
    sink = MemorySink()
    pipeline = Pipeline(
        sources=[
            (
                Source("src", payloads()),
                Decoder(kind="sensor", series_field="id", value_field="value"),
            )
        ],
        window=WindowBuffer(step_ns=NS_PER_S, max_series=10),
        forecaster=LastValue(2),
        sinks=[sink],
        settings=PipelineSettings(max_batch=20, max_wait=0.0, stats_every=10.0, instance="here"),
        clock=lambda: now[0],
    )
    try:
        for _ in range(4):
            pipeline.step()
            pipeline.writer.drain()  # written before the next report, so it has a latency
            now[0] += 6.0  # a report at 12 s and one at 24 s
        pipeline.checkpoint()
    finally:
        pipeline.close()
    stats = [e for o in sink.outputs for e in o.events if e.measurement == "streamer_stats"]
    assert [e.time_ns // NS_PER_S - T0 for e in stats] == [12]  # the 24 s one goes out next
    (event,) = stats
    assert event.tags == {"instance": "here"}
    assert event.fields["events_in"] == 60  # three batches of 20 by the 12 s report
    assert event.fields["rejected"] == 0
    assert event.fields["lag"] == 0
    assert float(event.fields["latency_ms"]) >= 0


def test_the_endpoint_reads_snapshots_only() -> None:
    """No pipeline at all: health, readiness and metrics come from the snapshots."""
    snapshot = Snapshot(
        started=True,
        sources=(SourceStatus("ticks", False, "group coordinator unreachable"),),
        events_in=7,
        rejected={"late": 2},
        lag={("ticks", "t/0"): 5},
        model_version=3,
    )
    metrics = Metrics().collect_from(lambda: snapshot)
    endpoint = HttpEndpoint("127.0.0.1:0", lambda: (snapshot, WriterStatus()), metrics, 5.0).start()
    try:
        status, body = get(endpoint, "/readyz")
        assert status == 503
        assert json.loads(body)["source_problems"] == {"ticks": "group coordinator unreachable"}
        assert get(endpoint, "/healthz")[0] == 200
        m = samples(get(endpoint, "/metrics")[1])
        assert m[("streamer_events_in_total", ())] == 7
        assert m[("streamer_rejected_total", (("reason", "late"),))] == 2
        assert m[("streamer_consumer_lag", (("partition", "t/0"), ("source", "ticks")))] == 5
        assert m[("streamer_model_version", ())] == 3
    finally:
        endpoint.stop()


def test_scrapes_while_the_pipeline_steps_never_fail(served: Any) -> None:
    """The loop keeps adding rejection reasons and series while /metrics is scraped."""
    pipeline, endpoint, source = served
    pipeline.restore()
    source.payloads.extend(
        b'{"id":"n%d","value":1,"ts":%d}' % (i, (T0 + i) * 1000) if i % 3 else b"{bad%d" % i
        for i in range(20_000)
    )
    done = threading.Event()

    def run() -> None:
        while not source.exhausted:
            pipeline.step()
        done.set()

    loop = threading.Thread(target=run)
    loop.start()
    scrapes = 0
    try:
        while scrapes < 1_000 or not done.is_set():
            status, _ = get(endpoint, "/metrics")
            assert status == 200
            scrapes += 1
    finally:
        loop.join()
    assert samples(get(endpoint, "/metrics")[1])[("streamer_events_in_total", ())] == 20_123


class Rebalanced(MemorySource):
    """A source whose partitions change, as a consumer group's rebalance does."""

    ends: Mapping[str, int] = MappingProxyType({})

    def end_offsets(self) -> Mapping[str, int]:
        return self.ends


def test_lag_and_partitions_follow_the_assignment_after_a_rebalance() -> None:
    source = Rebalanced("ticks", [])
    reporter = Reporter({"instance": "here"}, stats_every=1.0, progress_every=60.0, now=0.0)
    positions = {"ticks": {"t/0": 4, "t/1": 7}}

    def stats(now: float) -> None:
        reporter.stats(now, [source], positions, Counters(), 0, lambda: (0.0, 0))

    source.ends = {"t/0": 10, "t/1": 10}
    stats(1.0)
    assert reporter.lag == {("ticks", "t/0"): 6, ("ticks", "t/1"): 3}
    source.ends = {"t/1": 12}  # t/0 went to another instance
    stats(2.0)
    assert reporter.lag == {("ticks", "t/1"): 5}
    assert reporter.partitions == {"ticks": ("t/1",)}
    source.ends = {}  # the broker is away: nothing known, the last figures stand
    stats(3.0)
    assert reporter.lag == {("ticks", "t/1"): 5}

    snapshot = Snapshot(sources=(SourceStatus("ticks", True, None, ("t/1",)),), started=True)
    ok, body = readiness(snapshot, WriterStatus())
    assert ok
    assert body["partitions"] == {"ticks": ["t/1"]}
