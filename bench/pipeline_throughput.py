"""Throughput of the whole pipeline next to a bare kafka-python consumer, on one topic.

    .venv/bin/python bench/pipeline_throughput.py [--series 10000] [--events-per-series 30]

Needs the test services (scripts/services.sh up). Produces price ticks for `--series`
symbols to a fresh topic, then reads the topic twice from the start:

1. a bare KafkaConsumer (poll until every record is read), and
2. the daemon's pipeline: decode -> window -> baseline forecaster -> InfluxDB writes.

Both are timed from the first record received to the last one processed (for the
pipeline: its outputs acknowledged by InfluxDB). Kafka, InfluxDB and the benchmark
share the machine's cores, as they would on a small host.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from influxdb_client import InfluxDBClient
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient

from streamer.config.build import build_pipeline
from streamer.config.schema import StreamerConfig
from streamer.service.daemon import tune_runtime

SERVICES_ENV = (
    Path(
        os.environ.get(
            "STREAMER_SERVICES_RUN",
            Path(
                os.environ.get(
                    "STREAMER_SERVICES_CACHE", Path.home() / ".cache" / "streamer-services"
                )
            )
            / "run",
        )
    )
    / "services.env"
)


def services() -> dict[str, str]:
    if not SERVICES_ENV.exists():
        raise SystemExit(
            f"{SERVICES_ENV} not found: start the services with scripts/services.sh up"
        )
    return dict(line.split("=", 1) for line in SERVICES_ENV.read_text().splitlines() if "=" in line)


def produce(bootstrap: str, topic: str, series: int, per_series: int, ticks_per_step: int) -> int:
    """Ticks in time order: each symbol gets `ticks_per_step` ticks in each 1 s step."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=512 * 1024)
    start_ms = (int(time.time()) - 7200) * 1000
    spacing = 1000 // ticks_per_step
    n = 0
    for k in range(per_series):
        ts = start_ms + k * spacing
        for s in range(series):
            symbol = f"SYM{s:05d}"
            payload = b'{"symbol":"%s","price":%.3f,"size":%d,"ts":%d}' % (
                symbol.encode(),
                100 + (s % 97) + k * 0.01,
                1 + k % 7,
                ts,
            )
            producer.send(topic, key=symbol.encode(), value=payload)
            n += 1
    producer.flush()
    producer.close()
    return n


def bare_consumer(bootstrap: str, topic: str, total: int) -> float:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-bare-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    seen, first = 0, None
    while seen < total:
        for records in consumer.poll(timeout_ms=500, max_records=5000).values():
            if first is None:
                first = time.perf_counter()
            seen += len(records)
    elapsed = time.perf_counter() - (first or time.perf_counter())
    consumer.close()
    return seen / elapsed


def pipeline_rate(
    facts: dict[str, str], topic: str, bucket: str, total: int, horizon: int, workdir: Path
) -> tuple[float, dict[str, Any]]:
    config = StreamerConfig.model_validate(
        {
            "instance": f"bench-{uuid.uuid4().hex[:8]}",
            "sources": [
                {
                    "type": "kafka",
                    "name": "ticks",
                    "kind": "price",
                    "bootstrap_servers": [facts["KAFKA_BOOTSTRAP"]],
                    "topics": [topic],
                }
            ],
            "window": {"step": "1s", "aggregation": "last", "max_series": 20_000},
            "model": {"type": "last_value", "horizon": horizon},
            "pipeline": {"max_batch": 5000, "max_wait": "200ms"},
            "sinks": [
                {
                    "type": "influxdb",
                    "url": facts["INFLUXDB_URL"],
                    "org": facts["INFLUXDB_ORG"],
                    "bucket": bucket,
                    "token": facts["INFLUXDB_TOKEN"],
                }
            ],
            "checkpoint": {"path": str(workdir / "checkpoint.db"), "every": "10s"},
            "stats": {"every": "1h"},
        }
    )
    pipeline = build_pipeline(config)
    tune_runtime()  # as `streamer run` does
    pipeline.restore()
    first = None
    try:
        while pipeline.counters.events_in < total:
            if pipeline.step() and first is None:
                first = time.perf_counter()
        elapsed = time.perf_counter() - (first or time.perf_counter())
        pipeline.checkpoint()
    finally:
        pipeline.close()
    c = pipeline.counters
    return c.events_in / elapsed, {
        "events": c.events_in,
        "steps_closed": c.steps_closed,
        "forecasts_out": c.forecasts_out,
        "points_written": c.steps_closed + c.forecasts_out,
        "seconds": round(elapsed, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--events-per-series", type=int, default=30)
    parser.add_argument("--ticks-per-step", type=int, default=5)
    parser.add_argument("--horizon", type=int, default=5)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each, alternating; medians are quoted"
    )
    parser.add_argument("--output", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()

    facts = services()
    bootstrap = facts["KAFKA_BOOTSTRAP"]
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics(
        {topic: {"num_partitions": args.partitions, "replication_factor": 1}},
        wait_for_metadata=True,
    )
    influx = InfluxDBClient(
        url=facts["INFLUXDB_URL"], token=facts["INFLUXDB_TOKEN"], org=facts["INFLUXDB_ORG"]
    )
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / topic
    try:
        t = time.perf_counter()
        total = produce(bootstrap, topic, args.series, args.events_per_series, args.ticks_per_step)
        print(
            f"produced {total} ticks for {args.series} series in {time.perf_counter() - t:.1f}s",
            flush=True,
        )
        bares, rates, details = [], [], []
        for run in range(args.repeat):
            bares.append(bare_consumer(bootstrap, topic, total))
            bucket_name = f"{topic}-{run}"
            run_bucket = influx.buckets_api().create_bucket(bucket_name=bucket_name)
            rate, detail = pipeline_rate(
                facts, topic, bucket_name, total, args.horizon, workdir / str(run)
            )
            influx.buckets_api().delete_bucket(run_bucket)
            rates.append(rate)
            details.append(detail)
            print(
                f"run {run + 1}: bare consumer {bares[-1]:,.0f} events/s, "
                f"pipeline {rate:,.0f} events/s",
                flush=True,
            )
        bare, rate = statistics.median(bares), statistics.median(rates)
        print(f"bare kafka-python consumer: {bare:,.0f} events/s (median of {args.repeat})")
        print(
            f"pipeline (Kafka -> window -> last_value -> InfluxDB): {rate:,.0f} events/s "
            f"(median; per run {details[0]['steps_closed']} steps, "
            f"{details[0]['points_written']} points written)"
        )
        print(f"ratio pipeline / bare consumer: {rate / bare:.2f}")
        result = {
            "series": args.series,
            "events": total,
            "ticks_per_step": args.ticks_per_step,
            "horizon": args.horizon,
            "bare_consumer_events_per_s": [round(b) for b in bares],
            "pipeline_events_per_s": [round(r) for r in rates],
            "median_ratio": round(rate / bare, 3),
            "pipeline": details[0],
            "cpus": os.cpu_count(),
        }
        if args.output:
            args.output.write_text(json.dumps(result, indent=2) + "\n")
    finally:
        admin.delete_topics([topic])
        admin.close()
        influx.close()


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
