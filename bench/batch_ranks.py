"""Cost of a 5,000-row micro-batch by how many steps each series has in it.

    .venv/bin/python bench/batch_ranks.py [--rows 5000] [--ranks 1 8 64 500] [--out FILE]

A live stream gives each series about one step per batch (R = 1); a replay, or the
catch-up after an outage, gives few series many steps each (R = 500: 10 series with
500 steps). Models step through a batch rank by rank (the r-th step of every series
together), because each step's state depends on the one before. Quoted: milliseconds
per batch for the seasonal baseline, the forecast scoring and intervals (Outcomes),
the ensemble of last value and seasonal naive, and the cold start of a small LSTM over
last value, each the best of several batches.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from models.baseline import LastValue, SeasonalNaive
from models.cold_start import ColdStart
from models.ensemble import Ensemble
from models.outcomes import Outcomes
from models.recurrent import RecurrentForecaster
from streamer.core.records import StepBatch

H = 12


def batch_of(rows: int, rank: int, first_step: int, rng: np.random.Generator) -> StepBatch:
    series = max(1, rows // rank)
    slots = np.repeat(np.arange(series, dtype=np.int64), rank)
    steps = first_step + np.tile(np.arange(rank, dtype=np.int64), series)
    n = len(slots)
    return StepBatch(
        slots=slots,
        series=np.array([f"s{s}" for s in slots], dtype=object),
        kinds=np.full(n, "sensor", dtype=object),
        steps=steps,
        values=(100 + rng.normal(size=n)).reshape(n, 1),
        filled=np.zeros(n, dtype=bool),
        reset=steps == 0,
        step_ns=1_000_000_000,
    )


def timed(run: Callable[[StepBatch], object], rows: int, rank: int, repeats: int = 5) -> float:
    """Best milliseconds per batch, after a warm-up batch (state for every series)."""
    rng = np.random.default_rng(0)
    run(batch_of(rows, rank, 0, rng))
    best = float("inf")
    for i in range(1, repeats + 1):
        batch = batch_of(rows, rank, i * rank, rng)
        started = time.perf_counter()
        run(batch)
        best = min(best, time.perf_counter() - started)
    return 1000 * best


def subjects() -> dict[str, Callable[[], Callable[[StepBatch], object]]]:
    def outcomes() -> Callable[[StepBatch], object]:
        scorer, model = Outcomes(H), LastValue(H)
        return lambda b: scorer.observe(b, model.step(b))

    def ensemble() -> Callable[[StepBatch], object]:
        combined = Ensemble({"last_value": LastValue(H), "seasonal_naive": SeasonalNaive(H, 24)})
        return combined.step

    def cold_start() -> Callable[[StepBatch], object]:
        net = RecurrentForecaster(H, hidden_size=16)
        return ColdStart(net, LastValue(H), min_train_steps=0).step

    return {
        "seasonal_naive": lambda: SeasonalNaive(H, 24).step,
        "outcomes": outcomes,
        "ensemble": ensemble,
        "cold_start_lstm": cold_start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 8, 64, 500])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    results: dict[str, dict[str, float]] = {}
    for name, make in subjects().items():
        results[name] = {}
        for rank in args.ranks:
            ms = timed(make(), args.rows, rank)
            results[name][str(rank)] = round(ms, 2)
            print(f"{name:16s} R={rank:4d}: {ms:9.2f} ms per {args.rows}-row batch", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"rows": args.rows, "ms_per_batch": results}, indent=2))


if __name__ == "__main__":
    main()
