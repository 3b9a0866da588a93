"""`streamer evaluate`'s speed, one file row a micro-batch against `ROWS_PER_BATCH`, and
whether a single forecast differs between the two.

    .venv/bin/python bench/evaluate_speed.py [--set ETTh1] [--rows 14400]
        [--models lstm,ensemble,last_value] [--output bench/results/evaluate_speed.json]

No services. The protocol of `quality.py` (7 columns, z-scored, 25% warm-up, horizon 48,
the LSTM retraining on its schedule in event time), run twice in turn: with one file
row a micro-batch (how `evaluate` used to run) and with up to `ROWS_PER_BATCH` rows a
batch (cut where a retrain is due). For each model: rows/s both ways, and how many of
its forecasts differ (the aim: none).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from quality import COLUMNS, SETS, protocol  # noqa: E402

import streamer.evaluation.evaluate as evaluation  # noqa: E402
from streamer.evaluation.options import ModelRun  # noqa: E402

BATCHED = evaluation.ROWS_PER_BATCH


def keyed(run: ModelRun) -> dict[tuple[str, int], Any]:
    """A run's forecasts by (series, issue step): batches may order them otherwise."""
    i = run.issued
    return {(str(s), int(t)): y for s, t, y in zip(i.series, i.steps, i.yhat, strict=True)}


def differing(one: ModelRun, other: ModelRun) -> int:
    a, b = keyed(one), keyed(other)
    if a.keys() != b.keys():
        return len(a.keys() ^ b.keys())
    return sum(not np.array_equal(a[k], b[k], equal_nan=True) for k in a)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    asked = protocol(args.set, args.data, tuple(args.models.split(",")), args.rows)
    runs = {}
    for rows_per_batch in (1, BATCHED):
        evaluation.ROWS_PER_BATCH = rows_per_batch
        runs[rows_per_batch] = evaluation.evaluate(asked)
    evaluation.ROWS_PER_BATCH = BATCHED
    rows = runs[1].rows
    out: dict[str, Any] = {"set": args.set, "rows": rows, "series": len(COLUMNS), "models": {}}
    for model in asked.models:
        one, batched = runs[1].runs[model], runs[BATCHED].runs[model]
        figures = {
            "rows_per_s_one_row_a_batch": round(rows / one.seconds, 1),
            f"rows_per_s_{BATCHED}_rows_a_batch": round(rows / batched.seconds, 1),
            "speed_up": round(one.seconds / batched.seconds, 2),
            "retrains": len(batched.retrains),
            "forecasts": len(batched.issued.yhat),
            "forecasts_differing": differing(one, batched),
        }
        out["models"][model] = figures
        print(
            f"{model}: {figures['rows_per_s_one_row_a_batch']} rows/s one row a batch, "
            f"{figures[f'rows_per_s_{BATCHED}_rows_a_batch']} rows/s batched "
            f"({figures['speed_up']}x); {figures['retrains']} retrains; "
            f"{figures['forecasts_differing']} of {figures['forecasts']} forecasts differ",
            flush=True,
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--set", default="ETTh1", choices=sorted(SETS))
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--rows", type=int, default=14_400)
    parser.add_argument("--models", default="lstm,ensemble,last_value")
    parser.add_argument("--output", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    result = measure(args)
    if args.output:
        args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
