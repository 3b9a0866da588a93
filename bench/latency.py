"""Latency of the whole daemon on a live stream: from a reading's arrival to its step's
forecast acknowledged by InfluxDB.

    .venv/bin/python bench/latency.py [--series 2000] [--seconds 60] [--warmup 20]
        [--output bench/results/latency.json]

Needs the test services (scripts/services.sh up). A producer, a process of its own (as
a real one would be), sends one reading per
second for each of `--series` series to a fresh topic, in real time: series k's reading
of second t at t + k / series (so readings are spread evenly through each second), with
its send time as event time. The daemon (the default LSTM configuration, as in
bench/end_to_end.py) reads the topic; each output its InfluxDB sink acknowledges carries
the steps it closed and their forecasts, and a step's latency is the acknowledgement's
time minus its reading's send time. Steps whose reading was sent in the first
`--warmup` seconds are not counted.

A step closes when the series' next reading arrives (one step later, here 1 s) or when
it has been idle for `window.idle_close_after`; the aim is a p99 of at most
2 x (`pipeline.max_wait` + that close delay).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from end_to_end import daemon_config
from influxdb_client import InfluxDBClient
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient
from pipeline_throughput import services

from connectors.base import Output
from connectors.influx_sink import InfluxSink
from streamer.config.build import build_pipeline
from streamer.service.daemon import tune_runtime

STEP_S = 1.0


def produce(bootstrap: str, topic: str, series: int, until: float, stop: Any) -> int:
    """Readings in real time until `until` (time.time()) or `stop` is set: series k's at
    t + k / series. Runs in a process of its own, as a real producer would, so that it
    takes none of the daemon's interpreter time."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    sent, second = 0, int(time.time()) + 1
    while second < until and not stop.is_set():
        for k in range(series):
            due = second + k / series
            wait = due - time.time()
            if wait > 0:
                time.sleep(wait)
            key = b"lat-%05d" % k
            value = 20 + k % 13 + np.sin(second / 30 + k)
            payload = b'{"sensor_id":"%s","value":%.3f,"ts":%d}' % (key, value, due * 1000)
            producer.send(topic, key=key, value=payload)
            sent += 1
        second += 1
    producer.flush()
    producer.close()
    return sent


def measure(args: argparse.Namespace) -> dict[str, Any]:
    facts = services()
    bootstrap = facts["KAFKA_BOOTSTRAP"]
    topic = f"bench-latency-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics({topic: {"num_partitions": 4, "replication_factor": 1}})
    influx = InfluxDBClient(
        url=facts["INFLUXDB_URL"], token=facts["INFLUXDB_TOKEN"], org=facts["INFLUXDB_ORG"]
    )
    bucket = influx.buckets_api().create_bucket(bucket_name=topic)
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / topic
    config = daemon_config(facts, "readings", topic, topic, "lstm", workdir)
    pipeline = build_pipeline(config)
    (sink,) = pipeline.sinks
    assert isinstance(sink, InfluxSink)
    phase = {f"lat-{k:05d}": k / args.series for k in range(args.series)}
    start = time.time()
    counted_from = start + args.warmup
    latencies: list[float] = []
    write = sink.write

    def acknowledged(output: Output) -> None:
        write(output)
        now = time.time()
        steps = output.observed
        sent = steps.times_ns / 1e9 + np.array([phase.get(s, 0.0) for s in steps.series])
        latencies.extend((now - sent[sent >= counted_from]).tolist())

    sink.write = acknowledged  # type: ignore[method-assign]
    processes = multiprocessing.get_context("spawn")
    stop = processes.Event()
    until = start + args.warmup + args.seconds
    producer = processes.Process(
        target=produce, args=(bootstrap, topic, args.series, until, stop), daemon=True
    )
    tune_runtime()
    pipeline.restore()
    producer.start()
    try:
        while time.time() < until + 2 * STEP_S:
            pipeline.step()
        pipeline.writer.drain()
    finally:
        stop.set()
        producer.join()
        pipeline.close()
        influx.buckets_api().delete_bucket(bucket)
        influx.close()
        admin.delete_topics([topic])
        admin.close()
    bound = 2 * (config.pipeline.max_wait.total_seconds() + STEP_S)
    q = np.quantile(latencies, [0.5, 0.9, 0.99]) if latencies else [float("nan")] * 3
    return {
        "series": args.series,
        "events_per_s": args.series / STEP_S,
        "steps_counted": len(latencies),
        "p50_s": round(float(q[0]), 3),
        "p90_s": round(float(q[1]), 3),
        "p99_s": round(float(q[2]), 3),
        "max_s": round(max(latencies, default=float("nan")), 3),
        "mean_s": round(statistics.fmean(latencies), 3) if latencies else None,
        "bound_s": bound,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--series", type=int, default=2_000, help="each one reading a second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=20.0)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    result = measure(args)
    print(
        f"{args.series:,} series, {result['events_per_s']:,.0f} readings/s: arrival to "
        f"acknowledged forecast p50 {result['p50_s']}s, p90 {result['p90_s']}s, "
        f"p99 {result['p99_s']}s, max {result['max_s']}s over {result['steps_counted']:,} "
        f"steps (aim: p99 at most {result['bound_s']}s)",
        flush=True,
    )
    if args.output:
        args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
