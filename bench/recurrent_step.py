"""Speed and memory of the recurrent forecaster's batched step, by number of live series.

    .venv/bin/python bench/recurrent_step.py [--series 1000 10000 100000] [--hidden 64]

Each step gives every live series one new value (the live case: one closed step per
series per micro-batch), so a step is one gather -> LSTM call -> scatter over all of
them. The forecaster records every step in its replay buffer, as the daemon's does
(window 64, burn-in 16, the default 500,000 buffered steps). Quoted: steps/s and
forecasts/s (one forecast of H horizons per series per step), and memory per live
series: the state slab, scaler and replay ring by construction, and the growth of the
process's resident memory.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from models.recurrent import RecurrentForecaster
from models.replay_buffer import ReplayBuffer
from streamer.core.records import StepBatch


def rss_bytes() -> int:
    with open("/proc/self/statm") as stat:
        return int(stat.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def step_batch(n: int, step: int, rng: np.random.Generator) -> StepBatch:
    slots = np.arange(n, dtype=np.int64)
    return StepBatch(
        slots=slots,
        series=np.empty(n, dtype=object),
        kinds=np.empty(n, dtype=object),
        steps=np.full(n, step, dtype=np.int64),
        values=100 + rng.normal(size=(n, 1)),
        filled=np.zeros(n, dtype=bool),
        reset=np.full(n, step == 0),
        step_ns=1_000_000_000,
    )


def measure(n: int, hidden: int, horizon: int, layers: int, seconds: float) -> dict[str, float]:
    rng = np.random.default_rng(0)
    before = rss_bytes()
    replay = ReplayBuffer(64, 64 - 16 - horizon, 500_000)
    model = RecurrentForecaster(horizon, hidden_size=hidden, num_layers=layers, replay=replay)
    model.step(step_batch(n, 0, rng))  # allocates the slab; warms up
    grown_by = rss_bytes() - before
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or steps < 3:
        model.step(step_batch(n, steps + 1, rng))
        steps += 1
    elapsed = time.perf_counter() - start
    assert model.c is not None
    state = model.h.element_size() * (model.h[:, :n].nelement() + model.c[:, :n].nelement())
    scaler = sum(a[:n].nbytes for a in (model.scaler.count, model.scaler.mean, model.scaler.var))
    ring = replay.recent[:n].nbytes + sum(
        a[:n].nbytes
        for a in (replay.head, replay.count, replay.pending, replay.last_step, replay.slot_returns)
    )
    return {
        "series": n,
        "steps_per_s": round(steps / elapsed, 2),
        "forecasts_per_s": round(steps * n / elapsed),
        "state_bytes_per_series": (state + scaler) / n,
        "replay_ring_bytes_per_series": ring / n,
        "rss_growth_bytes_per_series": round(grown_by / n, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--series", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--horizon", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, hidden {args.hidden}, "
        f"layers {args.layers}, horizon {args.horizon}"
    )
    results = []
    for n in args.series:
        r = measure(n, args.hidden, args.horizon, args.layers, args.seconds)
        results.append(r)
        print(
            f"{n:>7} series: {r['forecasts_per_s']:>10,} forecasts/s ({r['steps_per_s']} steps/s); "
            f"state {r['state_bytes_per_series']:.0f} B/series, "
            f"replay ring {r['replay_ring_bytes_per_series']:.0f} B/series, "
            f"RSS growth {r['rss_growth_bytes_per_series']:.0f} B/series",
            flush=True,
        )
    if args.output:
        args.output.write_text(
            json.dumps(
                {
                    "hidden": args.hidden,
                    "layers": args.layers,
                    "horizon": args.horizon,
                    "results": results,
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
