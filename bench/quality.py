"""Forecast quality on the tuning sets: every model through `streamer evaluate`.

    .venv/bin/python bench/quality.py [--sets ETTh1,ETTm2] [--models lstm,ensemble,...]
        [--rows 14400]

The protocol of `../shared/data/README.md` (as FSNet / OneNet use it): the first 14,400
rows, all 7 columns each a series, z-scored with the mean and std of rows [0, 2880);
the first 25% of the rows are warm-up (learnt from, not scored); horizon 48, one forecast
per step, leak-free (each model runs through the daemon's own path, as
`streamer evaluate` runs it). For each set it prints MSE for h=1 and the means over 1..24 and 1..48,
with the ratios to last value and to seasonal naive (a season is a day: 24 steps for
ETTh1, 96 for ETTm2), and the seconds each model took; the figures go to
bench/results/quality.json. Models and the net run with their defaults, except the
retrain window, which evaluate sizes to hold the lags and the horizon.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streamer.config.models import MODELS  # noqa: E402
from streamer.config.schema import NetSettings  # noqa: E402
from streamer.evaluation.evaluate import EvaluateOptions, Progress, evaluate, fitted_retrain  # noqa: E402
from streamer.evaluation.report import table  # noqa: E402

SETS = {  # file, step in minutes, steps per day
    "ETTh1": ("ETTh1.csv", 60, 24),
    "ETTm2": ("ETTm2.csv", 15, 96),
}
COLUMNS = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
ROWS, ZSCORE_ROWS, HORIZON = 14_400, 2_880, 48


def progress(p: Progress) -> None:
    if p.done % 2_000 == 0 or p.done == p.rows:
        print(f"  {p.model} ({p.index}/{p.models}): {p.done}/{p.rows} rows", file=sys.stderr)


def protocol(name: str, data: Path, models: tuple[str, ...], rows: int = ROWS) -> EvaluateOptions:
    """The options of this protocol for set `name` (also `evaluate_speed.py`'s)."""
    file, minutes, season = SETS[name]
    return EvaluateOptions(
        data=data / file,
        time_col="date",
        targets=COLUMNS,
        step_ns=minutes * 60 * 1_000_000_000,
        horizon=HORIZON,
        normalize="standard",
        rows=rows,
        zscore_rows=ZSCORE_ROWS,
        season=season,
        models=models,
        model=NetSettings(season_length=season),
    )


def run(name: str, data: Path, models: tuple[str, ...], rows: int = ROWS) -> dict[str, object]:
    asked = replace(protocol(name, data, models, rows), progress=progress)
    window = fitted_retrain([NetSettings(season_length=asked.season)], HORIZON).window
    started = time.monotonic()
    report = evaluate(asked)
    print(f"\n{name} ({rows} rows, retrain window {window}, {time.monotonic() - started:.0f}s)")
    print(table(report))
    return {
        "window": window,
        "seconds": report.seconds,
        "models": {
            m: {"buckets": v["buckets"], "seconds": v["seconds"], "served_by": v["served_by"]}
            | ({"mean_weights": v["mean_weights"]} if "mean_weights" in v else {})
            for m, v in report.models.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--sets", default=",".join(SETS), help="from " + ", ".join(SETS))
    parser.add_argument(
        "--models", default=",".join(MODELS.types()), help="from " + ", ".join(MODELS.types())
    )
    parser.add_argument(
        "--rows",
        type=int,
        default=ROWS,
        help=f"first rows of each set (default {ROWS:,}, the protocol; with fewer than "
        f"{ZSCORE_ROWS:,}, a quick check, the z-score uses all of them)",
    )
    parser.add_argument("--output", type=Path, default=ROOT / "bench/results/quality.json")
    args = parser.parse_args()
    models = tuple(args.models.split(","))
    results = {name: run(name, args.data, models, args.rows) for name in args.sets.split(",")}
    args.output.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
