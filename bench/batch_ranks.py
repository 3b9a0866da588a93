"""Cost of a 5,000-row micro-batch by how many steps each series has in it.

    .venv/bin/python bench/batch_ranks.py [--rows 5000] [--ranks 1 8 64 500]
        [--only NAME ...] [--wide 10000] [--out FILE]

A live stream gives each series about one step per batch (R = 1); a replay, or the
catch-up after an outage, gives few series many steps each (R = 500: 10 series with
500 steps). Models step through a batch rank by rank (the r-th step of every series
together), because each step's state depends on the one before. Quoted: milliseconds
per batch for the seasonal baseline, the forecast scoring and intervals (Outcomes),
the ensemble of last value and seasonal naive, and the cold start of a small LSTM over
last value, each the best of several batches.

Also quoted: `DriftMonitor.update` with the default detector (Page-Hinkley, on arrays),
KSWIN on arrays, and river's ADWIN and KSWIN (one detector per series and signal, as
KSWIN ran before it ran on arrays) on both signals (price inputs, whose log returns it
watches, and the horizon-1 errors), its
references already learnt, at the same batch shapes and on one batch of `--wide`
series with one step each; the errors are scored before the clock starts. `--only`
runs the named subjects; `--out` updates their entries in FILE and keeps the rest.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from models.baseline import LastValue, SeasonalNaive
from models.cold_start import ColdStart
from models.ensemble import Ensemble
from models.outcomes import Outcomes
from models.recurrent import RecurrentForecaster
from streamer.config.drift import make_detector
from streamer.config.schema import AdwinDetector, DriftConfig, KswinDetector
from streamer.config.schema_drift import Detector
from streamer.core.records import ForecastErrors, StepBatch
from streamer.engine.drift import DriftMonitor

H = 12
# DriftMonitor.update with each detector, their own timing (see timed_drift): the
# default Page-Hinkley and KSWIN on arrays, and river's ADWIN and KSWIN, one detector
# per feed (PER_VALUE).
DRIFTS: dict[str, Callable[[], Detector]] = {
    "drift_page_hinkley": lambda: DriftConfig().detector,
    "drift_kswin": lambda: KswinDetector(type="kswin"),
    "drift_adwin": lambda: AdwinDetector(type="adwin"),
    "drift_kswin_river": lambda: KswinDetector(type="kswin"),
}
PER_VALUE = {"drift_kswin_river"}


def batch_of(
    rows: int, rank: int, first_step: int, rng: np.random.Generator, kind: str = "sensor"
) -> StepBatch:
    series = max(1, rows // rank)
    slots = np.repeat(np.arange(series, dtype=np.int64), rank)
    steps = first_step + np.tile(np.arange(rank, dtype=np.int64), series)
    n = len(slots)
    return StepBatch(
        slots=slots,
        series=np.array([f"s{s}" for s in slots], dtype=object),
        kinds=np.full(n, kind, dtype=object),
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


def timed_drift(name: str, rows: int, rank: int, repeats: int = 5) -> float:
    """Best milliseconds of `DriftMonitor.update` (detector `name` of DRIFTS) per
    batch, after one batch of enough steps per series that every (signal, series) has
    learnt its reference."""
    rng = np.random.default_rng(0)
    detector = DRIFTS[name]()
    make = make_detector(detector)
    if name in PER_VALUE:
        make = replace(make, arrays=None)
    monitor = DriftMonitor(make, detector.type, ("error", "input"))
    model, scorer = LastValue(1), Outcomes(1)

    def scored(batch: StepBatch) -> tuple[StepBatch, ForecastErrors]:
        return batch, scorer.observe(batch, model.step(batch))[0]

    # Priming: the inputs' log returns as a sensor's values, so that a monitor that
    # takes each price row on its own is primed in seconds; then one price step each,
    # so that the first timed batch has a last price for every series.
    # (KSWIN's test runs only once its window is full: primed past it, as live.)
    filled = detector.warmup + getattr(detector, "window_size", 0)
    series, prime = max(1, rows // rank), filled + 8
    batch, errors = scored(batch_of(series * prime, prime, 0, rng, "price"))
    returns = np.full((series, prime), np.nan)
    returns[:, 1:] = np.diff(np.log(batch.target.reshape(series, prime)), axis=1)
    kinds = np.full(len(batch), "sensor", dtype=object)
    monitor.update(replace(batch, kinds=kinds, values=returns.reshape(-1, 1)), errors)
    monitor.update(*scored(batch_of(series, 1, prime, rng, "price")))
    prime += 1
    best = float("inf")
    for i in range(repeats):
        batch, errors = scored(batch_of(rows, rank, prime + i * rank, rng, "price"))
        started = time.perf_counter()
        monitor.update(batch, errors)
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
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=[*subjects(), *DRIFTS])
    parser.add_argument("--wide", type=int, default=10_000, help="series in the wide batch")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    results: dict[str, dict[str, float]] = {}
    wide: dict[str, float] = {}
    drifts: list[tuple[str, Callable[[], Callable[[StepBatch], object]] | None]]
    drifts = [(name, None) for name in DRIFTS]
    for name, make in [*subjects().items(), *drifts]:
        if args.only and name not in args.only:
            continue
        results[name] = {}
        for rank in args.ranks:
            ms = (
                timed_drift(name, args.rows, rank)
                if make is None
                else timed(make(), args.rows, rank)
            )
            results[name][str(rank)] = round(ms, 2)
            print(f"{name:18s} R={rank:4d}: {ms:9.2f} ms per {args.rows}-row batch", flush=True)
        if make is None and args.wide:
            ms = wide[name] = round(timed_drift(name, args.wide, 1), 2)
            print(f"{name:18s} R=   1: {ms:9.2f} ms per {args.wide}-row batch", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        data = json.loads(args.out.read_text()) if args.out.exists() else {}
        if data.get("rows", args.rows) != args.rows:
            data = {}  # figures of another batch size: not comparable, start afresh
        data["rows"] = args.rows
        data.setdefault("ms_per_batch", {}).update(results)
        if wide:
            old = data.get("wide", {})
            kept = old.get("ms_per_batch", {}) if old.get("series") == args.wide else {}
            data["wide"] = {"series": args.wide, "rank": 1, "ms_per_batch": kept | wide}
        args.out.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
