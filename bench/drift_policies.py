"""Is retraining on detected drift worth it? Three retraining policies on streams that change.

    .venv/bin/python bench/drift_policies.py [--series 20] [--steps 3000] [--output FILE]

Synthetic hourly streams (a daily cycle, trend and noise per series) change at a known
step, half-way: a level shift of 4 standard deviations, or a cycle whose amplitude
doubles and phase moves. Each runs through `streamer evaluate` (prequential, no
look-ahead) with the LSTM under three policies, all with the same weekly retraining:

- never: a detector that never fires (plain scheduled retraining);
- on drift: on_drift retrain, with the default detector on the errors and inputs;
- every N: a "detector" that fires every N steps (retraining every N steps).

Quoted per policy: MAE over all scored forecasts, MAE in the day after the change,
retrains run, and drifts detected.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from streamer.config.schema import LstmModel, RetrainConfig
from streamer.engine.scoring import mae_after
from streamer.evaluation.evaluate import DRIFT_RETRAIN, EvaluateOptions, evaluate

HOUR_NS = 3_600_000_000_000
T0 = 1_700_000_000 // 3600 * 3600


def stream(kind: str, series: int, steps: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(steps)
    level = rng.uniform(50, 150, (series, 1))
    amplitude = rng.uniform(5, 15, (series, 1))
    phase = rng.uniform(0, 2 * np.pi, (series, 1))
    noise = rng.normal(0, 1, (series, steps)) * amplitude * 0.15
    cycle = amplitude * np.sin(2 * np.pi * t / 24 + phase)
    change = steps // 2
    if kind == "level_shift":
        values = level + cycle + noise
        values[:, change:] += 4 * amplitude * 0.7  # about 4 standard deviations
    else:
        after = 2 * amplitude * np.sin(2 * np.pi * t / 24 + phase + np.pi / 2)
        values = level + np.where(t < change, cycle, after) + noise
    return values


def write_csv(path: Path, values: np.ndarray) -> list[str]:
    names = [f"s{i}" for i in range(len(values))]
    with path.open("w") as out:
        out.write("time," + ",".join(names) + "\n")
        for t in range(values.shape[1]):
            row = ",".join(repr(float(v)) for v in values[:, t])
            out.write(f"{T0 + 3600 * t},{row}\n")
    return names


def run(path: Path, names: list[str], model: str, every: int, steps: int) -> dict[str, Any]:
    options = EvaluateOptions(
        data=path,
        time_col="time",
        targets=names,
        step_ns=HOUR_NS,
        horizon=6,
        season=24,
        models=(model,),
        model=LstmModel(type="lstm", hidden_size=32),
        retrain=RetrainConfig(min_new_steps=len(names) * 12),
        retrain_every=every,
        warmup_epochs=20,
    )
    report = evaluate(options)
    metrics = report.models[model]
    result = report.runs[model]
    change = T0 // 3600 + steps // 2
    after = mae_after(
        result.actual, result.issued, [(n, change) for n in names], 24, report.warmup_step
    )
    return {
        "mae": round(metrics["mae_avg"], 4),
        "mae_day_after_change": round(after, 4),
        "retrains": metrics["retrains"],
        "drifts": metrics["drifts"],
        "seconds": metrics["seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--series", type=int, default=20)
    parser.add_argument("--steps", type=int, default=3_000)
    parser.add_argument("--every", type=int, default=24, help="N of the every-N policy")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    week = 168
    policies = {
        "never (weekly schedule only)": ("lstm", week),
        "default detector (on_drift: retrain)": (DRIFT_RETRAIN, week),
        f"every {args.every} steps": ("lstm", args.every),
    }
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("level_shift", "cycle_change"):
            path = Path(tmp) / f"{kind}.csv"
            names = write_csv(path, stream(kind, args.series, args.steps))
            for policy, (model, every) in policies.items():
                r = run(path, names, model, every, args.steps)
                results.setdefault(kind, {})[policy] = r
                print(
                    f"{kind:<13} {policy:<30} MAE {r['mae']:8.4f}   day after the change "
                    f"{r['mae_day_after_change']:8.4f}   retrains {r['retrains']:4d}   "
                    f"drifts {r['drifts']:4d}   {r['seconds']:.0f}s",
                    flush=True,
                )
    if args.output:
        args.output.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
