"""Retraining speed, and what a retrain running in the background costs the stream.

    .venv/bin/python bench/retrain.py [--series 5000] [--hidden 64] [--seconds 15]

1. Retrain throughput: `train_copy` over a snapshot of `--windows` replay-buffer windows
   (64 steps, burn-in 16, horizon 12: the defaults), batch 256, one epoch, with 1 and 2
   torch threads. Quoted in windows/s (and steps/s: windows x 64).
2. Pipeline throughput with and without a retrain: in-memory JSON ticks for `--series`
   series -> decoder -> window -> stateful LSTM (hidden 64) -> line protocol to a file,
   timed for `--seconds` with no retrain, then for `--seconds` while retrains run back
   to back in their own thread (`retrain.threads`: 1). Alternating, `--repeat` times;
   medians quoted. No services: this isolates the CPU the retrain takes from the stream.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from connectors.codecs import Decoder
from connectors.file_sink import FileSink
from connectors.memory import MemorySource
from models.recurrent import RecurrentForecaster
from models.replay_buffer import ReplayBuffer, Snapshot
from models.training import from_windows, recency_weights, split, train_copy
from streamer.core.records import NS_PER_S
from streamer.engine.pipeline import Pipeline, PipelineSettings
from streamer.engine.retrain import Retrainer, RetrainSettings
from streamer.engine.window import WindowBuffer

WINDOW, BURN_IN, HORIZON = 64, 16, 12


def retrain_rate(windows: int, hidden: int, threads: int) -> dict[str, float]:
    """Windows/s of one epoch of train_copy on a synthetic snapshot."""
    rng = np.random.default_rng(0)
    t = np.arange(WINDOW)
    raw = 100 + 10 * np.sin(2 * np.pi * (t[None, :] + rng.integers(0, 24, (windows, 1))) / 24)
    raw += rng.normal(0, 1, raw.shape)
    channels = [raw, raw, np.full_like(raw, 100.0), np.full_like(raw, 7.0)]
    snapshot = Snapshot(
        np.stack(channels, axis=-1).astype(np.float32),
        first_steps=np.zeros(windows, dtype=np.int64),
        returns=np.zeros(windows, dtype=bool),
        step_ns=NS_PER_S,
    )
    train, validation = split(from_windows(snapshot), 0.2)
    net = RecurrentForecaster(HORIZON, hidden_size=hidden).net
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        started = time.perf_counter()
        result = train_copy(
            net,
            train,
            validation,
            burn_in=BURN_IN,
            batch_size=256,
            weights=recency_weights(len(train), len(train) / 2),
        )
        elapsed = time.perf_counter() - started
    finally:
        torch.set_num_threads(previous)
    return {
        "threads": threads,
        "windows": result.windows,
        "seconds": round(elapsed, 2),
        "windows_per_s": round(result.windows / elapsed),
        "steps_per_s": round(result.windows * WINDOW / elapsed),
    }


def ticks(series: int, steps: int) -> list[bytes]:
    start_ms = (int(time.time()) - 2 * steps) * 1000
    rng = np.random.default_rng(1)
    phase = rng.uniform(0, 2 * np.pi, series)
    out = []
    for k in range(steps):
        prices = 100 + 5 * np.sin(2 * np.pi * k / 24 + phase) + rng.normal(0, 0.5, series)
        ts = start_ms + k * 1000
        out += [
            b'{"symbol":"S%d","price":%.4f,"ts":%d}' % (s, p, ts)
            for s, p in enumerate(prices.tolist())
        ]
    return out


def build(series: int, hidden: int, payloads: list[bytes], out: Path) -> tuple[Pipeline, Retrainer]:
    model = RecurrentForecaster(
        HORIZON,
        hidden_size=hidden,
        replay=ReplayBuffer(WINDOW, WINDOW - BURN_IN - HORIZON, 500_000),
    )
    retrainer = Retrainer(model, RetrainSettings(burn_in=BURN_IN, min_new_steps=1, threads=1))
    pipeline = Pipeline(
        sources=[
            (
                MemorySource("ticks", payloads),
                Decoder(kind="price", series_field="symbol", value_field="price"),
            )
        ],
        window=WindowBuffer(step_ns=NS_PER_S, max_series=series),
        forecaster=model,
        sinks=[FileSink(out)],
        retrainer=retrainer,
        settings=PipelineSettings(max_batch=5000, max_wait=0.0, checkpoint_every=None),
    )
    return pipeline, retrainer


def phase(pipeline: Pipeline, retrainer: Retrainer, seconds: float, retraining: bool) -> float:
    """Events/s over `seconds`; with retraining, a retrain is kept running throughout."""
    if retraining:
        retrainer.request("bench")
        while not retrainer.running:
            pipeline.step()
    events, started = pipeline.counters.events_in, time.perf_counter()
    while time.perf_counter() - started < seconds:
        pipeline.step()
        if retraining and not retrainer.running:
            retrainer.request("bench")
    return (pipeline.counters.events_in - events) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--series", type=int, default=5_000)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--windows", type=int, default=4_096)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()

    retrain_rate(256, args.hidden, 1)  # warm-up: torch's first calls allocate and tune
    training = [retrain_rate(args.windows, args.hidden, threads) for threads in (1, 2)]
    for r in training:
        print(
            f"retrain, {r['threads']} torch thread(s): {r['windows_per_s']:,} windows/s "
            f"({r['steps_per_s']:,} steps/s; {r['windows']} windows in {r['seconds']}s)",
            flush=True,
        )

    # Enough steps for warm-up (a full window per series) and every phase at ~60k events/s.
    steps = WINDOW + int(2 * args.repeat * args.seconds * 60_000 / args.series) + 10
    payloads = ticks(args.series, steps)
    print(f"{len(payloads):,} ticks for {args.series:,} series", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        pipeline, retrainer = build(args.series, args.hidden, payloads, Path(tmp) / "out.lp")
        try:
            while pipeline.counters.events_in < WINDOW * args.series:  # fill the buffer
                pipeline.step()
            without, during = [], []
            for run in range(args.repeat):
                without.append(phase(pipeline, retrainer, args.seconds, retraining=False))
                during.append(phase(pipeline, retrainer, args.seconds, retraining=True))
                print(
                    f"run {run + 1}: {without[-1]:,.0f} events/s without a retrain, "
                    f"{during[-1]:,.0f} during one ({during[-1] / without[-1]:.2f})",
                    flush=True,
                )
                while retrainer.running:  # let it finish (and swap) outside the timing
                    time.sleep(0.1)
                    retrainer.poll(time.time_ns())
        finally:
            pipeline.close()
    ratio = statistics.median(during) / statistics.median(without)
    print(
        f"pipeline: median {statistics.median(without):,.0f} events/s without a retrain, "
        f"{statistics.median(during):,.0f} during one: ratio {ratio:.2f}"
    )
    print(f"retrains: {dict(retrainer.outcomes)}")
    result = {
        "series": args.series,
        "hidden": args.hidden,
        "retrain": training,
        "pipeline_events_per_s_without": [round(x) for x in without],
        "pipeline_events_per_s_during": [round(x) for x in during],
        "ratio": round(ratio, 3),
        "retrain_outcomes": dict(retrainer.outcomes),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if args.output:
        args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
