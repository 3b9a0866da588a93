"""The daemon's memory and checkpoint size by number of live series, in its default
LSTM configuration (intervals, drift, the replay buffer), with no services.

    .venv/bin/python bench/memory.py memory [--series 100000] [--steps 110] [--beyond 20000]
    .venv/bin/python bench/memory.py checkpoint [--series 10000] [--at 100,1000]

The pipeline is the one `streamer run` builds from the config, with its source replaced
by readings generated as they are read (one value per series per 1 s step, so that the
input itself takes no memory) and its sink by one that makes the InfluxDB sink's line
protocol and drops it.

`memory`: resident memory (VmRSS) with the pipeline built and no series yet, then as
every series reaches each tenth of `--steps`; bytes per live series (over the empty
process) and what it grew by after every series' first two steps; then `--beyond` more series than
`window.max_series` (set to `--series`) arrive, each for `--steps` steps, evicting the
least recently seen, and resident memory is read again.

`checkpoint`: checkpoints written in the background every `--every`, as the daemon
writes them; the batches that started one against the others (median and longest); at
each step count of `--at`, one more written the way a shutdown writes it: its size (the
state row in SQLite) and how long `Pipeline.checkpoint` held the stream.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

import streamer.config.build as build_module
from connectors.base import AcknowledgedSink, Output, RawRecord
from connectors.codecs import Decoder
from connectors.memory import MemorySource
from connectors.points import lines
from streamer.config.schema import StreamerConfig
from streamer.core.records import Position
from streamer.engine.pipeline import Pipeline
from streamer.service.daemon import tune_runtime


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


class Readings(MemorySource):
    """Readings of series `first` .. `first + series - 1`, step after step, made as
    they are polled: every series one value per 1 s step, values wandering."""

    def __init__(self, series: int, start_s: int) -> None:
        super().__init__("readings", [])
        self.count, self.first, self.start_ms = series, 0, start_s * 1000
        self.sent = 0  # readings made so far; the next is of step sent // series
        self.rng = np.random.default_rng(0)

    def poll(self, max_records: int, timeout: float) -> list[RawRecord]:
        out = []
        for _ in range(max_records):
            step, k = divmod(self.sent, self.count)
            name = self.first + k
            value = 20 + name % 31 + np.sin(step / 24 + name) + 0.1 * (step % 7)
            payload = b'{"sensor_id":"s%d","value":%.3f,"ts":%d}' % (
                name,
                value,
                self.start_ms + step * 1000,
            )
            out.append(RawRecord(payload, Position(self.name, "0", self.sent)))
            self.sent += 1
        return out


class Discard(AcknowledgedSink):
    """Makes every output's line protocol, as the InfluxDB sink does, and drops it."""

    def write(self, output: Output) -> None:
        lines(output)

    def close(self) -> None:
        pass


def pipeline(
    series: int, steps: int, workdir: Path, every: str = "1000d"
) -> tuple[Pipeline, Readings]:
    """The daemon's pipeline for the default LSTM configuration, fed by `Readings`."""
    source = Readings(series, int(time.time()) - 2 * steps - 3600)
    config = StreamerConfig.model_validate(
        {
            "sources": [{"type": "replay", "name": "readings", "path": "/dev/null"}],
            "window": {"step": "1s", "max_series": series},
            "sinks": [{"type": "file", "path": str(workdir / "unused.lp")}],
            "checkpoint": {"path": str(workdir / "checkpoint.db"), "every": every},
            "stats": {"every": "1h"},
            "http": {"enabled": False},
        }
    )
    decoder = Decoder(kind="sensor", series_field="sensor_id", value_field="value")
    with (
        mock.patch.object(build_module, "build_sources", return_value=[(source, decoder)]),
        mock.patch.object(build_module, "build_sinks", return_value=[Discard()]),
    ):
        return build_module.build_pipeline(config, stop_at_end=False), source


def run_until(pipe: Pipeline, source: Readings, step: int) -> None:
    """Step the pipeline until every series has had `step` readings."""
    while source.sent < step * source.count:
        pipe.step()


def memory(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    pipe, source = pipeline(args.series, args.steps, workdir)
    tune_runtime()
    empty = rss_bytes()  # the process with its pipeline built, before any series
    run_until(pipe, source, 2)
    base = rss_bytes()
    marks = []
    for k in range(1, 11):
        step = max(2, args.steps * k // 10)
        started = time.perf_counter()
        run_until(pipe, source, step)
        marks.append({"steps": step, "rss_bytes": rss_bytes(), "live": pipe.window.live_series})
        rate = (step - (marks[-2]["steps"] if k > 1 else 2)) * args.series
        print(
            f"{step} steps: RSS {marks[-1]['rss_bytes'] / 2**30:.2f} GiB, "
            f"{rate / (time.perf_counter() - started):,.0f} events/s",
            flush=True,
        )
    result: dict[str, Any] = {
        "series": args.series,
        "empty_rss_bytes": empty,
        "start_rss_bytes": base,
        "bytes_per_live_series": round((marks[-1]["rss_bytes"] - empty) / args.series),
        "marks": marks,
        "bytes_per_series": round((marks[-1]["rss_bytes"] - base) / args.series),
    }
    if args.beyond:
        # New series: their readings follow on from the old ones' steps.
        source.first, source.count = args.series, args.beyond
        source.sent = args.steps * args.beyond
        run_until(pipe, source, 2 * args.steps)
        result["beyond"] = {
            "new_series": args.beyond,
            "rss_bytes": rss_bytes(),
            "live": pipe.window.live_series,
        }
        print(f"{args.beyond:,} more series: RSS {rss_bytes() / 2**30:.2f} GiB", flush=True)
    pipe.close()
    return result


def checkpoint(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """At each step count of `--at`: the newest checkpoint's size, and how long the
    batches took that started a checkpoint, against the median batch (checkpoints due
    every `--every` seconds, as the daemon writes them); then one written the way a
    shutdown writes it, the loop waiting for all of it."""
    pipe, source = pipeline(args.series, max(args.at), workdir, args.every)
    tune_runtime()
    assert pipe.checkpoints is not None
    assert pipe.saver is not None
    out = []
    for step in args.at:
        batches: list[float] = []
        starting: list[float] = []
        while source.sent < step * source.count:
            busy, started = pipe.saver.busy, time.perf_counter()
            pipe.step()
            took = time.perf_counter() - started
            (starting if pipe.saver.busy and not busy else batches).append(took)
        started = time.perf_counter()
        pipe.checkpoint()
        waited = time.perf_counter() - started
        (size,) = pipe.checkpoints._db.execute(
            "SELECT length(state) FROM checkpoint ORDER BY id DESC LIMIT 1"
        ).fetchone()
        out.append(
            {
                "steps": step,
                "bytes": size,
                "median_batch_seconds": round(statistics.median(batches or [0.0]), 3),
                "longest_batch_seconds": round(max(batches, default=0.0), 3),
                "checkpoints_started": len(starting),
                "median_batch_starting_one_seconds": round(statistics.median(starting or [0.0]), 3),
                "longest_batch_starting_one_seconds": round(max(starting, default=0.0), 3),
                "written_while_waiting_seconds": round(waited, 3),
            }
        )
        print(
            f"{step} steps: checkpoint {size / 2**20:.1f} MiB; batches: median "
            f"{out[-1]['median_batch_seconds']}s, longest {out[-1]['longest_batch_seconds']}s; "
            f"starting one of {len(starting)} checkpoints: median "
            f"{out[-1]['median_batch_starting_one_seconds']}s, longest "
            f"{out[-1]['longest_batch_starting_one_seconds']}s; "
            f"written while the loop waits: {waited:.2f}s",
            flush=True,
        )
    pipe.close()
    first, last = out[0]["bytes"], out[-1]["bytes"]
    return {"series": args.series, "checkpoints": out, "growth": round(last / first - 1, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=["memory", "checkpoint"])
    parser.add_argument("--series", type=int)
    parser.add_argument("--steps", type=int, default=110)
    parser.add_argument("--beyond", type=int, default=20_000)
    parser.add_argument("--at", default="100,1000")
    parser.add_argument("--every", default="10s", help="checkpoint.every (checkpoint)")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    args.at = [int(a) for a in args.at.split(",")]
    args.series = args.series or (100_000 if args.what == "memory" else 10_000)
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-memory-{os.getpid()}"
    result = (memory if args.what == "memory" else checkpoint)(args, workdir)
    if args.output:
        args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
