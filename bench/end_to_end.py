"""The whole daemon, in its default LSTM configuration, against two ceilings measured in
the same run: a bare kafka-python consumer reading the same topic, and a bare
influxdb-client writer writing the same points.

    .venv/bin/python bench/end_to_end.py [--inputs ticks,readings] [--series 10000]
        [--steps 8] [--repeat 3] [--profile] [--output bench/results/end_to_end.json]

Needs the test services (scripts/services.sh up). For each input it fills a fresh topic
once, then runs, `--repeat` times in turn:

1. the bare consumer: poll from the start until every record is read;
2. the daemon (`lstm`, the defaults: intervals, drift, retraining on its schedule, the
   InfluxDB sink), then the same with `last_value`: from the first record read to the
   last output acknowledged by InfluxDB;
3. the bare writer: the points the daemon wrote in its first run (kept as line
   protocol), in synchronous 5,000-point requests through influxdb-client's write API.

Inputs: `ticks` (price ticks, 5 per 1 s step per symbol) and `readings` (one sensor
reading per step per series). Kafka, InfluxDB and the benchmark share the host's
cores, as they would on a small machine. `--profile` prints the pipeline thread's and
the writer thread's top functions for one more daemon run of each input.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient
from pipeline_throughput import bare_consumer, services

from connectors.influx_sink import InfluxSink
from streamer.config.build import build_pipeline
from streamer.config.schema import StreamerConfig
from streamer.service.daemon import tune_runtime

WRITER_BATCH = 5_000
DEFAULT_SWITCH_INTERVAL = sys.getswitchinterval()  # Python's, for the bare reader and writer
TICKS_PER_STEP = 5


def events(kind: str, series: int, steps: int, start_ms: int) -> Iterator[tuple[bytes, bytes]]:
    """(key, JSON payload) in time order: price ticks, TICKS_PER_STEP per 1 s step, or
    one sensor reading per step; values wander so that forecasts are not constant."""
    per_step = TICKS_PER_STEP if kind == "ticks" else 1
    spacing = 1000 // per_step
    for k in range(steps * per_step):
        ts = start_ms + k * spacing
        for s in range(series):
            if kind == "ticks":
                key = b"SYM%05d" % s
                value = 100 + (s % 97) + 0.01 * ((k * 7 + s) % 13)
                yield (
                    key,
                    b'{"symbol":"%s","price":%.3f,"size":%d,"ts":%d}'
                    % (
                        key,
                        value,
                        1 + k % 7,
                        ts,
                    ),
                )
            else:
                key = b"sensor-%05d" % s
                value = 20 + (s % 31) + 0.1 * ((k * 5 + s) % 11)
                yield key, b'{"sensor_id":"%s","value":%.3f,"ts":%d}' % (key, value, ts)


def produce(bootstrap: str, topic: str, kind: str, series: int, steps: int) -> int:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=512 * 1024)
    n = 0
    for key, payload in events(kind, series, steps, (int(time.time()) - 7200) * 1000):
        producer.send(topic, key=key, value=payload)
        n += 1
    producer.flush()
    producer.close()
    return n


def bare_writer(influx: InfluxDBClient, bucket: str, lines_file: Path) -> tuple[float, int]:
    """Points per second of influxdb-client writing pre-serialised line protocol in
    synchronous WRITER_BATCH-point requests: the InfluxDB ceiling."""
    with lines_file.open("rb") as f:
        all_lines = f.read().splitlines()
    bodies = [
        b"\n".join(all_lines[i : i + WRITER_BATCH]) for i in range(0, len(all_lines), WRITER_BATCH)
    ]
    write = influx.write_api(write_options=SYNCHRONOUS)
    start = time.perf_counter()
    for body in bodies:
        write.write(bucket=bucket, record=body)
    elapsed = time.perf_counter() - start
    write.close()
    return len(all_lines) / elapsed, len(all_lines)


def daemon_config(
    facts: dict[str, str],
    kind: str,
    topic: str,
    bucket: str,
    model: str,
    workdir: Path,
    requests: int | None = None,
    pipeline: dict[str, Any] | None = None,
) -> StreamerConfig:
    source: dict[str, Any] = {
        "type": "kafka",
        "name": kind,
        "kind": "price" if kind == "ticks" else "sensor",
        "bootstrap_servers": [facts["KAFKA_BOOTSTRAP"]],
        "topics": [topic],
    }
    return StreamerConfig.model_validate(
        {
            "instance": f"bench-{uuid.uuid4().hex[:8]}",
            "sources": [source],
            "window": {"step": "1s", "max_series": 200_000},
            "model": {"type": model},
            "sinks": [
                {
                    "type": "influxdb",
                    "url": facts["INFLUXDB_URL"],
                    "org": facts["INFLUXDB_ORG"],
                    "bucket": bucket,
                    "token": facts["INFLUXDB_TOKEN"],
                    **({} if requests is None else {"requests": requests}),
                }
            ],
            "checkpoint": {"path": str(workdir / "checkpoint.db")},
            "stats": {"every": "1h"},
            **({} if pipeline is None else {"pipeline": pipeline}),
        }
    )


def run_daemon(
    config: StreamerConfig,
    total: int,
    keep_lines: Path | None = None,
    profile: bool = False,
    switch_interval: float | None = None,
) -> dict[str, Any]:
    """Read `total` events through the daemon's pipeline; its rates from the first record
    read to the last output acknowledged. `keep_lines` collects what the sink posted;
    `profile` adds the pipeline and writer threads' top functions; `switch_interval`
    replaces the daemon's own (Python's default is restored after)."""
    pipeline = build_pipeline(config)
    (sink,) = pipeline.sinks
    assert isinstance(sink, InfluxSink)
    posted = [0]
    keep = keep_lines.open("w") if keep_lines is not None else None
    post = sink.write_lines
    writer_profile = cProfile.Profile() if profile else None

    def write_lines(body: list[str]) -> None:
        posted[0] += len(body)
        if keep is not None:
            keep.write("\n".join(body) + "\n")
        post(body)

    sink.write_lines = write_lines  # type: ignore[method-assign]
    if writer_profile is not None:
        write = sink.write

        def profiled_write(output: Any) -> None:
            writer_profile.runcall(write, output)

        sink.write = profiled_write  # type: ignore[method-assign]
    pipeline_profile = cProfile.Profile() if profile else None
    tune_runtime(*([] if switch_interval is None else [switch_interval]))  # as `streamer run`
    pipeline.restore()
    first = None
    try:
        if pipeline_profile is not None:
            pipeline_profile.enable()
        while pipeline.counters.events_in < total:
            if pipeline.step() and first is None:
                first = time.perf_counter()
        pipeline.writer.drain()
        elapsed = time.perf_counter() - (first or time.perf_counter())
        if pipeline_profile is not None:
            pipeline_profile.disable()
    finally:
        pipeline.close()
        sys.setswitchinterval(DEFAULT_SWITCH_INTERVAL)
        if keep is not None:
            keep.close()
    c = pipeline.counters
    result: dict[str, Any] = {
        "events_per_s": round(c.events_in / elapsed),
        "points_per_s": round(posted[0] / elapsed),
        "events": c.events_in,
        "steps_closed": c.steps_closed,
        "forecasts_per_s": round(c.forecasts_out / elapsed),
        "points_written": posted[0],
        "seconds": round(elapsed, 2),
    }
    if pipeline_profile is not None and writer_profile is not None:
        result["profile"] = {
            "pipeline thread": top_functions(pipeline_profile),
            "writer thread (sink.write)": top_functions(writer_profile),
        }
    return result


def top_functions(profile: cProfile.Profile, n: int = 15) -> list[str]:
    """The `n` functions with the most time of their own, as pstats prints them."""
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(n)
    text = out.getvalue().splitlines()
    header = next(i for i, line in enumerate(text) if line.lstrip().startswith("ncalls"))
    return [line.rstrip() for line in text[header : header + n + 1] if line.strip()]


def bench_input(
    args: argparse.Namespace, facts: dict[str, str], influx: InfluxDBClient, kind: str
) -> dict[str, Any]:
    """Every reader and writer on one input, `--repeat` times in turn."""
    bootstrap = facts["KAFKA_BOOTSTRAP"]
    topic = f"bench-e2e-{kind}-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics(
        {topic: {"num_partitions": args.partitions, "replication_factor": 1}},
        wait_for_metadata=True,
    )
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / topic
    workdir.mkdir(parents=True)
    buckets = influx.buckets_api()
    made: list[Any] = []

    def bucket() -> str:
        name = f"{topic}-{len(made)}"
        made.append(buckets.create_bucket(bucket_name=name, org=facts["INFLUXDB_ORG"]))
        return name

    runs: dict[str, list[dict[str, Any]]] = {label: [] for label, *_ in args.variants}
    consumer, writer = [], []
    try:
        t = time.perf_counter()
        total = produce(bootstrap, topic, kind, args.series, args.steps)
        print(
            f"{kind}: {total:,} events for {args.series:,} series "
            f"in {time.perf_counter() - t:.1f}s",
            flush=True,
        )
        lines = workdir / "points.lp"
        for run in range(args.repeat):
            consumer.append(round(bare_consumer(bootstrap, topic, total)))
            for n, (label, model, requests, switch) in enumerate(args.variants):
                state = workdir / f"{n}-{run}"
                config = daemon_config(facts, kind, topic, bucket(), model, state, requests)
                keep = lines if run == 0 and n == 0 else None
                runs[label].append(run_daemon(config, total, keep, switch_interval=switch))
            rate, points = bare_writer(influx, bucket(), lines)
            writer.append(round(rate))
            print(
                f"{kind} run {run + 1}: bare consumer {consumer[-1]:,} ev/s, bare writer "
                f"{writer[-1]:,} points/s, "
                + ", ".join(
                    f"{m} {r[-1]['events_per_s']:,} ev/s {r[-1]['points_per_s']:,} points/s"
                    for m, r in runs.items()
                ),
                flush=True,
            )
        result: dict[str, Any] = {
            "events": total,
            "bare_consumer_events_per_s": consumer,
            "bare_writer_points_per_s": writer,
            "bare_writer_points": points,
            "daemon": runs,
            "ratios": {
                model: {
                    "events_vs_bare_consumer": spread(
                        [r["events_per_s"] / c for r, c in zip(rs, consumer, strict=True)]
                    ),
                    "points_vs_bare_writer": spread(
                        [r["points_per_s"] / w for r, w in zip(rs, writer, strict=True)]
                    ),
                }
                for model, rs in runs.items()
            },
        }
        if args.profile:
            _, model, requests, switch = args.variants[0]
            config = daemon_config(
                facts, kind, topic, bucket(), model, workdir / "profile", requests
            )
            profiled = run_daemon(config, total, profile=True, switch_interval=switch)
            result["profile"] = profiled["profile"]
        return result
    finally:
        for made_bucket in made:
            buckets.delete_bucket(made_bucket)
        admin.delete_topics([topic])
        admin.close()


def spread(values: list[float]) -> dict[str, float]:
    """min, median and max, rounded: how a figure varies between runs on a shared host."""
    return {
        "min": round(min(values), 3),
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--inputs", default="ticks,readings", help="ticks, readings or both")
    parser.add_argument(
        "--models", default="lstm,last_value", help="model types, the first profiled"
    )
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=8, help="1 s steps of input per series")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--requests",
        help="the sink's write requests in flight, e.g. 1,2: each model runs with each "
        "(default: the sink's default)",
    )
    parser.add_argument(
        "--switch-intervals",
        help="the interpreter's switch interval in seconds, e.g. 0.005,0.0005: each model "
        "runs with each (default: the daemon's own)",
    )
    parser.add_argument("--output", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    requests = [int(r) for r in args.requests.split(",")] if args.requests else [None]
    switches = (
        [float(s) for s in args.switch_intervals.split(",")] if args.switch_intervals else [None]
    )
    args.variants = [
        (
            model
            + ("" if len(requests) == 1 else f" requests={r}")
            + ("" if len(switches) == 1 else f" switch={s}"),
            model,
            r,
            s,
        )
        for model in args.models.split(",")
        for r in requests
        for s in switches
    ]
    facts = services()
    influx = InfluxDBClient(
        url=facts["INFLUXDB_URL"], token=facts["INFLUXDB_TOKEN"], org=facts["INFLUXDB_ORG"]
    )
    try:
        results = {kind: bench_input(args, facts, influx, kind) for kind in args.inputs.split(",")}
    finally:
        influx.close()
    summary = {
        "series": args.series,
        "steps": args.steps,
        "repeat": args.repeat,
        "cpus": os.cpu_count(),
        "inputs": results,
    }
    for kind, result in results.items():
        for model, ratios in result["ratios"].items():
            print(
                f"{kind}, {model}: events/s vs bare consumer {ratios['events_vs_bare_consumer']}, "
                f"points/s vs bare writer {ratios['points_vs_bare_writer']}"
            )
        for thread, top in result.get("profile", {}).items():
            print(f"{kind}: {thread}, top functions by own time:")
            print("\n".join(top))
    if args.output:
        args.output.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
