"""The batched design against the obvious one: one LSTM call per event (batch size 1,
the series' h and c carried), on the same series and model size.

    .venv/bin/python bench/per_event.py [--series 10000] [--seconds 5]
        [--events 4000] [--no-daemon] [--output bench/results/per_event.json]

Two comparisons, in forecasts per second (one forecast: H horizons of one series):

1. the LSTM's step alone (`RecurrentForecaster.step`, replay buffer recording as in the
   daemon): every series' step in one call, against one call per series' step;
2. the whole daemon (bench/end_to_end.py's readings input: Kafka -> window -> LSTM with
   its defaults -> InfluxDB), in its micro-batches, against the same daemon reading one
   event per micro-batch (`pipeline.max_batch: 1`), which is what a per-event design
   does: each event closes its series' step, which the LSTM steps alone, and whose
   points are written alone. The per-event run reads `--events` events.

Part 2 needs the test services (scripts/services.sh up); `--no-daemon` skips it.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch
from end_to_end import daemon_config, produce, run_daemon
from influxdb_client import InfluxDBClient
from kafka.admin import KafkaAdminClient
from pipeline_throughput import services
from recurrent_step import step_batch

from models.recurrent import RecurrentForecaster
from models.replay_buffer import ReplayBuffer


def lstm_step(series: int, horizon: int, seconds: float) -> dict[str, float]:
    """Forecasts/s of the batched step and of one call per series' step."""
    rng = np.random.default_rng(0)
    model = RecurrentForecaster(horizon, replay=ReplayBuffer(64, 64 - 16 - horizon, 500_000))
    model.step(step_batch(series, 0, rng))  # allocates every series' state; warms up
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or steps < 3:
        steps += 1
        model.step(step_batch(series, steps, rng))
    batched = steps * series / (time.perf_counter() - start)
    one = step_batch(1, 0, rng)
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        slot = calls % series
        step = steps + 1 + calls // series
        model.step(
            one.__class__(
                slots=np.array([slot]),
                series=one.series,
                kinds=one.kinds,
                steps=np.array([step]),
                values=100 + rng.normal(size=(1, 1)),
                filled=one.filled,
                reset=one.filled,
                step_ns=one.step_ns,
            )
        )
        calls += 1
    per_event = calls / (time.perf_counter() - start)
    return {
        "batched_forecasts_per_s": round(batched),
        "per_event_forecasts_per_s": round(per_event),
        "ratio": round(batched / per_event, 1),
    }


def daemon(series: int, steps: int, events: int) -> dict[str, Any]:
    """Forecasts/s of the daemon in micro-batches and one event at a time."""
    facts = services()
    bootstrap = facts["KAFKA_BOOTSTRAP"]
    topic = f"bench-per-event-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics({topic: {"num_partitions": 4, "replication_factor": 1}})
    influx = InfluxDBClient(
        url=facts["INFLUXDB_URL"], token=facts["INFLUXDB_TOKEN"], org=facts["INFLUXDB_ORG"]
    )
    buckets = influx.buckets_api()
    made: list[Any] = []
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / topic
    try:
        total = produce(bootstrap, topic, "readings", series, steps)
        runs = {}
        for name, pipeline, read in (
            ("micro-batches", None, total),
            ("per event", {"max_batch": 1}, min(events, total)),
        ):
            made.append(buckets.create_bucket(bucket_name=f"{topic}-{len(made)}"))
            config = daemon_config(
                facts, "readings", topic, made[-1].name, "lstm", workdir / name, None, pipeline
            )
            runs[name] = run_daemon(config, read)
            print(f"daemon, {name}: {runs[name]['forecasts_per_s']:,} forecasts/s", flush=True)
        ratio = runs["micro-batches"]["forecasts_per_s"] / runs["per event"]["forecasts_per_s"]
        return {"runs": runs, "ratio": round(ratio, 1)}
    finally:
        for bucket in made:
            buckets.delete_bucket(bucket)
        influx.close()
        admin.delete_topics([topic])
        admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--horizon", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--steps", type=int, default=4, help="readings per series (daemon)")
    parser.add_argument("--events", type=int, default=4_000, help="events read per event")
    parser.add_argument("--no-daemon", action="store_true")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    step = lstm_step(args.series, args.horizon, args.seconds)
    print(
        f"LSTM step, {args.series:,} series: batched {step['batched_forecasts_per_s']:,} "
        f"forecasts/s, one call per event {step['per_event_forecasts_per_s']:,}: "
        f"{step['ratio']}x",
        flush=True,
    )
    result: dict[str, Any] = {"series": args.series, "horizon": args.horizon, "lstm_step": step}
    if not args.no_daemon:
        result["daemon"] = daemon(args.series, args.steps, args.events)
        print(f"daemon: micro-batches / per event: {result['daemon']['ratio']}x")
    if args.output:
        args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
