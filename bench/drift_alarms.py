"""How often the default drift detector fires, and how soon after a real change.

    .venv/bin/python bench/drift_alarms.py [--series 50] [--steps 20000] [--data DIR]
        [--rows 14400] [--kinds gaussian,ar0.8,sine24] [--seed 1] [--no-tuning] [--before]
        [--output FILE]

Everything runs through `DriftMonitor.update` as the pipeline calls it: the input signal
is the step's value; the error signal is the horizon-1 error of a forecaster scored by
`Outcomes` (|error| over the series' running std), here last value and seasonal naive.

- Tuning sets: ETTh1 and ETTm2 (first 14,400 rows; the 7 value columns z-scored with
  the mean and std of rows [0, 2880); each column a series): alarms per 10,000 steps
  per series, on the inputs and on the errors of last value and seasonal naive (season
  24 hourly, 96 at 15 minutes).
- Stationary synthetic noise (Gaussian, AR(1) with phi 0.8, a daily sine plus noise):
  alarms per 10,000 steps per series; none of them is a real change.
- Changes: a level shift of 3 standard deviations in the inputs, a jump of 3 standard
  deviations in the error signal, and errors whose spread triples: steps from the
  change to the first alarm (median, max, and how many series took over 50).

With `--before`, the same signals also go through what ran before references were
added: river's ADWIN (delta 0.002) on the raw signal.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from models.baseline import LastValue, SeasonalNaive
from models.outcomes import Outcomes
from streamer.config.drift import make_detector
from streamer.config.schema import DriftConfig
from streamer.core.records import ForecastErrors, StepBatch
from streamer.engine.drift import DriftMonitor, Signal

DATA = Path("/work/shared/data")
ROWS, REFERENCE_ROWS = 14_400, 2_880
STEP_NS = 1_000_000_000
Alarms = list[list[int]]  # per series, the steps at which it fired


def default_monitor(signal: Signal) -> DriftMonitor:
    detector = DriftConfig().detector
    return DriftMonitor(make_detector(detector), detector.type, (signal,))


def batch_at(values: np.ndarray, step: int) -> StepBatch:
    """One closed step of every series (slot i = series i)."""
    n = len(values)
    return StepBatch(
        slots=np.arange(n),
        series=np.array([f"s{i}" for i in range(n)], dtype=object),
        kinds=np.full(n, "sensor", dtype=object),
        steps=np.full(n, step, dtype=np.int64),
        values=np.asarray(values, dtype=float).reshape(n, 1),
        filled=np.zeros(n, bool),
        reset=np.full(n, step == 0),
        step_ns=STEP_NS,
    )


def alarms_on_inputs(values: np.ndarray, monitor: Any = None) -> Alarms:
    """Values [series, steps] as the input signal."""
    monitor = monitor or default_monitor("input")
    fired: Alarms = [[] for _ in values]
    for t in range(values.shape[1]):
        for d in monitor.update(batch_at(values[:, t], t), None):
            fired[d.slot].append(t)
    return fired


def alarms_on_errors(values: np.ndarray, model: Any, monitor: Any = None) -> Alarms:
    """Values [series, steps] forecast by `model`; its scored errors as the error signal."""
    monitor = monitor or default_monitor("error")
    outcomes = Outcomes(1, window=50)
    fired: Alarms = [[] for _ in values]
    for t in range(values.shape[1]):
        batch = batch_at(values[:, t], t)
        errors, _ = outcomes.observe(batch, model.step(batch))
        for d in monitor.update(batch, errors):
            fired[d.slot].append(t)
    return fired


def alarms_on_scaled(scaled: np.ndarray) -> Alarms:
    """An error signal [series, steps] given as it is (the scaled absolute errors)."""
    monitor = default_monitor("error")
    n = len(scaled)
    names = np.array([f"s{i}" for i in range(n)], dtype=object)
    fired: Alarms = [[] for _ in scaled]
    for t in range(scaled.shape[1]):
        errors = ForecastErrors(
            series=names,
            slots=np.arange(n),
            steps=np.full(n, t, dtype=np.int64),
            horizon=np.ones(n, dtype=np.int64),
            error=scaled[:, t],
            scaled=scaled[:, t],
            model=np.full(n, "given", dtype=object),
            step_ns=STEP_NS,
        )
        for d in monitor.update(batch_at(np.zeros(n), t), errors):
            fired[d.slot].append(t)
    return fired


class RawAdwin:
    """What ran before references: river's ADWIN (delta 0.002) fed the raw signal."""

    def __init__(self, signal: Signal) -> None:
        from river import drift

        self.signal = signal
        self.detectors: dict[int, Any] = {}
        self.make: Callable[[], Any] = lambda: drift.ADWIN(delta=0.002)  # type: ignore[no-untyped-call]

    def update(self, batch: StepBatch, errors: ForecastErrors | None) -> list[Any]:
        if self.signal == "input":
            slots, values = batch.slots, batch.target
        else:
            assert errors is not None
            slots, values = errors.slots, errors.scaled
        fired = []
        for slot, value in zip(slots.tolist(), values.tolist(), strict=True):
            if not np.isfinite(value):
                continue
            detector = self.detectors.setdefault(slot, self.make())
            detector.update(value)
            if detector.drift_detected:
                fired.append(_Fired(slot))
        return fired


class _Fired:
    def __init__(self, slot: int) -> None:
        self.slot = slot


def per_10k(fired: Alarms, steps: int) -> dict[str, Any]:
    counts = np.array([len(f) for f in fired])
    return {
        "mean": round(float(counts.mean() * 10_000 / steps), 3),
        "max": round(float(counts.max() * 10_000 / steps), 2),
        "per_series": [round(float(c * 10_000 / steps), 2) for c in counts],
    }


def delays(fired: Alarms, change: int) -> dict[str, Any]:
    """Steps from the change to each series' first alarm at or after it."""
    d = np.array([min((t - change for t in f if t >= change), default=10**9) for f in fired])
    found = d[d < 10**9]
    return {
        "median": float(np.median(found)) if len(found) else None,
        "max": int(found.max()) if len(found) else None,
        "over_50": int((d > 50).sum()),
        "missed": int((d == 10**9).sum()),
        "series": len(d),
    }


def load(path: Path, rows: int = ROWS) -> np.ndarray:
    """[7, rows]: the value columns, z-scored with their first REFERENCE_ROWS rows."""
    a = np.genfromtxt(path, delimiter=",", skip_header=1, usecols=range(1, 8), max_rows=rows)
    reference = a[:REFERENCE_ROWS]
    return np.asarray(((a - reference.mean(0)) / reference.std(0)).T)


def noise(kind: str, series: int, steps: int, seed: int) -> np.ndarray:
    """Stationary synthetic series [series, steps] with unit (marginal) std: `gaussian`,
    `ar0.8` (AR(1) with phi 0.8, started in its stationary distribution), `sine24` (a
    sine of period 24 with amplitude 2, plus Gaussian noise)."""
    rng = np.random.default_rng(seed)
    e = rng.normal(size=(series, steps))
    if kind == "gaussian":
        return e
    if kind.startswith("ar"):
        phi = float(kind[2:])
        x = np.empty_like(e)
        x[:, 0] = e[:, 0]
        scale = np.sqrt(1 - phi**2)
        for t in range(1, steps):
            x[:, t] = phi * x[:, t - 1] + scale * e[:, t]
        return x
    if not kind.startswith("sine"):
        raise ValueError(f"unknown noise {kind!r}; expected gaussian, arPHI or sinePERIOD")
    phase = rng.uniform(0, 2 * np.pi, (series, 1))
    cycle = 2 * np.sin(2 * np.pi * np.arange(steps) / float(kind[4:]) + phase)
    out: np.ndarray = (cycle + e) / np.sqrt(3)
    return out


Case = tuple[str, str, Callable[[np.ndarray], Alarms]]


def signals(season: int, before: bool) -> list[Case]:
    """(signal, how, run) for the input signal and the errors of two baselines."""
    cases: list[Case] = [
        ("input", "value", lambda v: alarms_on_inputs(v)),
        ("error", "last value", lambda v: alarms_on_errors(v, LastValue(1))),
        (
            "error",
            f"seasonal naive {season}",
            lambda v: alarms_on_errors(v, SeasonalNaive(1, season)),
        ),
    ]
    if before:
        cases += [
            ("input", "value, raw ADWIN", lambda v: alarms_on_inputs(v, RawAdwin("input"))),
            (
                "error",
                "last value, raw ADWIN",
                lambda v: alarms_on_errors(v, LastValue(1), RawAdwin("error")),
            ),
            (
                "error",
                f"seasonal naive {season}, raw ADWIN",
                lambda v: alarms_on_errors(v, SeasonalNaive(1, season), RawAdwin("error")),
            ),
        ]
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=50)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument(
        "--rows",
        type=int,
        default=ROWS,
        help=f"first rows of each ETT file (default {ROWS:,}; with fewer than "
        f"{REFERENCE_ROWS:,}, a quick check, the z-score uses all of them)",
    )
    parser.add_argument("--kinds", default="gaussian,ar0.8,sine24", help="synthetic noises")
    parser.add_argument("--seed", type=int, default=1, help="of the synthetic noises")
    parser.add_argument("--no-tuning", action="store_true", help="skip the ETT files")
    parser.add_argument("--before", action="store_true")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    logging.getLogger("streamer.engine.drift").setLevel(logging.ERROR)  # one line per alarm
    started = time.perf_counter()
    detector = DriftConfig().detector
    print(f"detector: {detector!r}")
    results: dict[str, Any] = {"detector": repr(detector), "tuning": {}, "synthetic": {}}

    print("\nalarms per 10,000 steps per series (mean over series; max; per series)")
    for name, season in () if args.no_tuning else (("ETTh1", 24), ("ETTm2", 96)):
        values = load(args.data / f"{name}.csv", args.rows)
        for signal, how, run in signals(season, args.before):
            rate = per_10k(run(values), values.shape[1])
            results["tuning"][f"{name} {signal} ({how})"] = rate
            print(
                f"{name:6s} {signal:5s} {how:32s} {rate['mean']:6.2f} {rate['max']:6.2f}  "
                f"{rate['per_series']}"
            )
    for kind in args.kinds.split(","):
        values = noise(kind, args.series, args.steps, seed=args.seed)
        for signal, how, run in signals(24, args.before):
            rate = per_10k(run(values), values.shape[1])
            rate.pop("per_series")
            results["synthetic"][f"{kind} {signal} ({how})"] = rate
            print(f"{kind:8s} {signal:5s} {how:32s} {rate['mean']:6.3f} {rate['max']:6.2f}")

    print("\nsteps from a change to the first alarm")
    change, steps, series = 2_000, 2_500, 2 * args.series
    results["delays"] = {}
    for kind in ("gaussian", "ar0.8", "sine24"):
        values = noise(kind, series, steps, seed=2)
        values[:, change:] += 3.0  # unit std: 3 standard deviations
        results["delays"][f"input, 3-sd level shift, {kind}"] = delays(
            alarms_on_inputs(values), change
        )
    rng = np.random.default_rng(3)
    scaled = np.abs(rng.normal(size=(series, steps)))
    scaled[:, change:] += 3 * scaled[:, :change].std()
    results["delays"]["error, 3-sd jump"] = delays(alarms_on_scaled(scaled), change)
    values = noise("gaussian", series, steps, seed=4)
    values[:, change:] *= 3.0
    results["delays"]["error (last value), spread x3"] = delays(
        alarms_on_errors(values, LastValue(1)), change
    )
    for case, d in results["delays"].items():
        print(
            f"{case:40s} median {d['median']}, max {d['max']}, over 50: {d['over_50']} "
            f"of {d['series']} (missed {d['missed']})"
        )
    results["seconds"] = round(time.perf_counter() - started, 1)
    print(f"\n{results['seconds']} s")
    if args.output:
        args.output.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
