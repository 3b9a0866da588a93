"""How many steps a second InfluxDB takes in, by the shape of the points: the schema
Grafana reads (DESIGN.md) against two alternatives.

    .venv/bin/python bench/influx_schema.py [--series 10000] [--steps 6] [--horizon 12]
        [--repeat 3] [--output bench/results/influx_schema.json]

Needs InfluxDB (scripts/services.sh up). The points are the daemon's own line protocol
(`connectors.points.lines`) for steady-state steps: per step of a series, 1 observed
point, H forecast points (yhat, lower, upper, issued_at, version) and H forecast_error
points. Each shape is written to a fresh bucket by a bare influxdb-client writer in
synchronous 5,000-line requests, shapes in turn, `--repeat` times:

- `design`: as the daemon writes them;
- `lean`: forecast points without issued_at and version (derivable: the target time
  minus h steps, and the retrain measurement's versions over time);
- `wide`: one forecast point per issued step with fields yhat_h, lower_h, upper_h for
  every horizon h (and version), its time the issue time; errors one point per target
  step with abs_err_h and sq_err_h.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from end_to_end import WRITER_BATCH
from influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from pipeline_throughput import services

from connectors.base import Output
from connectors.points import lines
from streamer.core.records import NS_PER_S, ForecastErrors, Forecasts, StepBatch


def design_lines(series: int, steps: int, horizon: int) -> list[str]:
    """The daemon's points for `steps` steps of `series` series, every forecast scored."""
    rng = np.random.default_rng(0)
    names = np.array([f"sensor-{k:05d}" for k in range(series)], dtype=object)
    out: list[str] = []
    for step in range(1_000, 1_000 + steps):
        at = np.full(series, step, dtype=np.int64)
        values = 20 + rng.normal(size=(series, 1))
        yhat = values + rng.normal(size=(series, horizon))
        observed = StepBatch(
            np.arange(series), names, np.full(series, "sensor", dtype=object), at, values,
            np.zeros(series, bool), np.zeros(series, bool), NS_PER_S,
        )  # fmt: skip
        forecasts = Forecasts(
            names, at, yhat, "lstm", NS_PER_S, yhat - 1, yhat + 1, version=3
        )  # fmt: skip
        h = np.tile(np.arange(1, horizon + 1), series)
        errors = ForecastErrors(
            np.repeat(names, horizon), np.repeat(np.arange(series), horizon),
            np.repeat(at, horizon), h, rng.normal(size=series * horizon),
            np.abs(rng.normal(size=series * horizon)),
            np.full(series * horizon, "lstm", dtype=object), NS_PER_S,
        )  # fmt: skip
        out += lines(Output(observed, forecasts, (), errors))
    return out


def lean(design: list[str]) -> list[str]:
    drop = re.compile(r",issued_at=\d+i|,version=\d+i")
    return [drop.sub("", line) if line.startswith("forecast,") else line for line in design]


def wide(design: list[str]) -> list[str]:
    """Forecasts folded into one point per (series, issue step), errors into one per
    (series, target step)."""
    out: list[str] = []
    groups: dict[tuple[str, str, str, int], list[str]] = defaultdict(list)
    for line in design:
        head, fields, stamp = line.split(" ")
        measurement, *tags = head.split(",")
        if measurement not in ("forecast", "forecast_error"):
            out.append(line)
            continue
        tag = dict(kv.split("=", 1) for kv in tags)
        h = int(tag["horizon"])
        # A forecast's horizons share its issue time; an error's, its target's.
        at = int(stamp) - h * NS_PER_S if measurement == "forecast" else int(stamp)
        key = (measurement, tag["model"], tag["series"], at)
        for field in fields.split(","):
            name, value = field.split("=", 1)
            if name == "issued_at":
                continue
            groups[key].append(
                value and (f"{name}={value}" if name == "version" else f"{name}_{h}={value}")
            )
    for (measurement, model, name, at), folded in groups.items():
        unique = list(dict.fromkeys(folded))
        out.append(f"{measurement}_wide,model={model},series={name} {','.join(unique)} {at}")
    return out


def steps_per_s(influx: InfluxDBClient, org: str, shape: list[str], steps: int) -> float:
    buckets = influx.buckets_api()
    bucket = buckets.create_bucket(bucket_name=f"bench-schema-{uuid.uuid4().hex[:8]}", org=org)
    bodies = ["\n".join(shape[i : i + WRITER_BATCH]) for i in range(0, len(shape), WRITER_BATCH)]
    write = influx.write_api(write_options=SYNCHRONOUS)
    start = time.perf_counter()
    for body in bodies:
        write.write(bucket=bucket.name, record=body)
    elapsed = time.perf_counter() - start
    write.close()
    buckets.delete_bucket(bucket)
    return steps / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--horizon", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    design = design_lines(args.series, args.steps, args.horizon)
    shapes = {"design": design, "lean": lean(design), "wide": wide(design)}
    facts = services()
    influx = InfluxDBClient(
        url=facts["INFLUXDB_URL"], token=facts["INFLUXDB_TOKEN"], org=facts["INFLUXDB_ORG"]
    )
    steps = args.series * args.steps
    rates: dict[str, list[float]] = {name: [] for name in shapes}
    try:
        for _ in range(args.repeat):
            for name, shape in shapes.items():
                rates[name].append(steps_per_s(influx, facts["INFLUXDB_ORG"], shape, steps))
    finally:
        influx.close()
    result: dict[str, Any] = {"series": args.series, "steps": args.steps, "horizon": args.horizon}
    for name, shape in shapes.items():
        median = statistics.median(rates[name])
        result[name] = {
            "lines_per_step": round(len(shape) / steps, 2),
            "bytes_per_step": round(sum(map(len, shape)) / steps),
            "steps_per_s": [round(r) for r in rates[name]],
            "vs_design": round(median / statistics.median(rates["design"]), 2),
        }
        print(
            f"{name}: {result[name]['lines_per_step']} lines and "
            f"{result[name]['bytes_per_step']} bytes a step; steps/s "
            f"{result[name]['steps_per_s']} (median {result[name]['vs_design']}x design)",
            flush=True,
        )
    if args.output:
        args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
