"""What moving series between replicas costs: state per series, commit and restore time.

    .venv/bin/python bench/changelog_restore.py [--series 10000 100000] [--partitions 6]

Needs the test services (scripts/services.sh up). For each size, builds the state of
that many live series under the default configuration (LSTM with its lag highway and
replay ring, conformal intervals, Page-Hinkley drift on inputs and errors) by running
`--steps` steps of every series through the window, the forecaster, the outcomes and
the drift monitor. Then, timed:

1. take: every series' record (what a checkpoint does for the series that changed);
2. commit: all records to a fresh changelog on the real broker, in one transaction
   per partition (what a checkpoint writes);
3. read: each partition's changelog read back to its end (read_committed), as a
   replica that was just assigned the partition does;
4. put: the records into a fresh pipeline's parts (the other half of a restore).

Restore time is read + put. Figures go to stdout as one JSON line per size.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from connectors.kafka_changelog import KafkaChangelog, changelog_topic
from models.outcomes import Outcomes
from streamer.config.build import build_forecaster
from streamer.config.drift import build_drift
from streamer.config.schema import StreamerConfig
from streamer.engine.series_state import SeriesStates
from streamer.engine.window import WindowBuffer

SERVICES_ENV = (
    Path(
        os.environ.get(
            "STREAMER_SERVICES_RUN",
            Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
            / "streamer-services/run",
        )
    )
    / "services.env"
)


def bootstrap() -> str:
    facts = dict(
        line.split("=", 1) for line in SERVICES_ENV.read_text().splitlines() if "=" in line
    )
    return facts["KAFKA_BOOTSTRAP"]


def parts(series: int) -> SeriesStates:
    """The stateful parts of a default pipeline, room for `series` live series."""
    config = StreamerConfig.model_validate(
        {
            "sources": [{"type": "replay", "path": "unused.csv"}],
            "sinks": [{"type": "file", "path": "unused.jsonl"}],
            "window": {"max_series": 2 * series},
        }
    )
    forecaster, retrainer = build_forecaster(config)
    drift, _ = build_drift(config, forecaster, retrainer)
    outcomes = Outcomes(config.model.horizon, config.intervals.coverage, config.intervals.window)
    window = WindowBuffer(step_ns=1_000_000_000, max_series=2 * series)
    return SeriesStates(window, forecaster, outcomes, drift)


def populate(states: SeriesStates, names: list[str], steps: int) -> None:
    rng = np.random.default_rng(0)
    n = len(names)
    level = rng.uniform(50, 150, n)
    for t in range(steps + 1):
        times = np.full(n, t * 1_000_000_000 + 1, dtype=np.int64)
        values = level + 5 * np.sin(t / 4 + level) + rng.normal(0, 1, n)
        closed = states.window.add(names, "sensor", times, values, 0.0).closed
        if len(closed):
            forecasts = states.forecaster.step(closed)
            assert states.outcomes is not None
            assert states.drift is not None
            errors, _ = states.outcomes.observe(closed, forecasts)
            states.drift.update(closed, errors)


def measure(series: int, partitions: int, steps: int) -> dict[str, Any]:
    from kafka.admin import KafkaAdminClient

    names = [f"sensor-{i:07d}" for i in range(series)]
    source = parts(series)
    started = time.perf_counter()
    populate(source, names, steps)
    built = time.perf_counter() - started

    started = time.perf_counter()
    records = source.take(names, 0.0)
    take = time.perf_counter() - started
    sizes = np.array([len(r) for r in records])
    deflated = np.mean([len(zlib.compress(r, 1)) for r in records[:1000]])

    servers = bootstrap()
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=servers)
    admin.create_topics({topic: {"num_partitions": partitions, "replication_factor": 1}})
    settings = {"bootstrap_servers": [servers], "client_id": "bench"}
    changelog = KafkaChangelog(group_id="bench", instance="one", settings=settings)
    by_partition: dict[str, dict[str, bytes | None]] = {}
    for i, (name, record) in enumerate(zip(names, records, strict=True)):
        by_partition.setdefault(f"{topic}/{i % partitions}", {})[name] = record
    started = time.perf_counter()
    for partition, changes in by_partition.items():
        changelog.commit({partition: changes}, {}, None)
    commit = time.perf_counter() - started

    target = parts(series)
    read = put = 0.0
    restored = 0
    for partition in by_partition:
        started = time.perf_counter()
        state, _ = changelog.restore(partition)
        read += time.perf_counter() - started
        started = time.perf_counter()
        target.put(list(state), [r for r in state.values() if r is not None], 0.0)
        put += time.perf_counter() - started
        restored += len(state)
    changelog.close()
    admin.delete_topics([topic, changelog_topic("bench", topic)])
    admin.close()
    assert restored == series, (restored, series)
    return {
        "series": series,
        "partitions": partitions,
        "steps_before": steps,
        "record_bytes_mean": round(float(sizes.mean())),
        "record_bytes_deflate1": round(float(deflated)),
        "changelog_mib": round(float(sizes.sum()) / 2**20, 1),
        "build_s": round(built, 1),
        "take_s": round(take, 2),
        "commit_s": round(commit, 2),
        "read_s": round(read, 2),
        "put_s": round(put, 2),
        "restore_s": round(read + put, 2),
        "restore_series_per_s": round(series / (read + put)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    for series in args.series:
        print(json.dumps(measure(series, args.partitions, args.steps)), flush=True)


if __name__ == "__main__":
    main()
