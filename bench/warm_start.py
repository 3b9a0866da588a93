"""What a warm start buys: a new deployment's first live steps with and without
`streamer train` on the history before them, on the public tuning sets.

    .venv/bin/python bench/warm_start.py [--set ETTh1] [--history 8640] [--live 720]
        [--epochs 20] [--min-train-steps N] [--output bench/results/warm_start_etth1.json]

No services. The set's first `--history` rows are the history, the next `--live` rows
the live stream, replayed through `streamer run` (one reading a row per column, as a
replay source reads it) into a file sink. Both deployments run the same config (the
default LSTM with its cold-start gate, horizon 24, `calendar: true`): the cold one
starts empty, so its baseline (seasonal naive) answers until the LSTM has trained on
`min_train_steps` live steps (more than the live rows hold: as in a deployment's first
days); the warm one starts from the checkpoint `streamer train` wrote from the history.
The replay is faster than the retrain schedule, so neither retrains while it runs.
Scored: every forecast whose target is among the live rows, against the value there
(MAE and MSE per horizon bucket, on the raw scale), and who answered.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connectors.line_protocol import parse_line  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
COLUMNS = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
SETS = {"ETTh1": ("1h", 24), "ETTm2": ("15m", 96)}  # step, season
HORIZON = 24


def split(path: Path, history: int, live: int, folder: Path) -> tuple[Path, Path]:
    """The history as the wide file `train` reads; the live rows as a replay source
    reads them (one reading a line)."""
    with path.open() as f:
        rows = list(csv.DictReader(f))[: history + live]
    if len(rows) < history + live:
        raise SystemExit(f"{path} has {len(rows)} rows; --history + --live need more")
    wide, long = folder / "history.csv", folder / "live.csv"
    with wide.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["date", *COLUMNS])
        out.writerows([r["date"], *(r[c] for c in COLUMNS)] for r in rows[:history])
    with long.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["date", "sensor", "value"])
        for r in rows[history:]:
            out.writerows([r["date"], c, r[c]] for c in COLUMNS)
    return wide, long


def config(
    folder: Path, name: str, live: Path, step: str, season: int, min_train: int | None
) -> Path:
    path = folder / f"{name}.yaml"
    fields = {"series": "sensor", "value": "value", "time": "date", "time_unit": "iso8601"}
    text = {
        "sources": [{"type": "replay", "path": str(live), "stop_at_end": True, "fields": fields}],
        "window": {"step": step},
        "model": {
            "horizon": HORIZON,
            "season_length": season,
            "calendar": True,
            **({"min_train_steps": min_train} if min_train else {}),
        },
        "sinks": [{"type": "file", "path": str(folder / f"{name}.lp")}],
        "checkpoint": {"path": str(folder / f"{name}.db")},
        "http": {"enabled": False},
        "stats": {"every": "1h"},
    }
    path.write_text(yaml.safe_dump(text))
    return path


def streamer(*args: str) -> float:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "streamer", *args], cwd=ROOT, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"streamer {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return time.monotonic() - started


def score(path: Path) -> dict[str, Any]:
    """MAE and MSE by horizon bucket of every forecast whose target was observed."""
    actual: dict[tuple[str, int], float] = {}
    forecasts: list[tuple[str, int, int, float, str]] = []
    for line in path.read_text().splitlines():
        p = parse_line(line)
        if p.measurement == "observed":
            actual[(p.tags["series"], p.time or 0)] = float(p.fields["value"])
        elif p.measurement == "forecast":
            h = int(p.tags["horizon"])
            forecasts.append(
                (p.tags["series"], p.time or 0, h, float(p.fields["yhat"]), p.tags["model"])
            )
    errors: dict[int, list[float]] = {}
    served: dict[str, int] = {}
    for series, at, h, yhat, model in forecasts:
        if (series, at) in actual:
            errors.setdefault(h, []).append(yhat - actual[(series, at)])
            served[model] = served.get(model, 0) + 1
    out: dict[str, Any] = {"forecasts": sum(len(e) for e in errors.values()), "served": served}
    for name, hs in (("h=1", [1]), ("1..6", range(1, 7)), ("1..24", range(1, HORIZON + 1))):
        e = np.concatenate([np.asarray(errors[h]) for h in hs if h in errors])
        out[name] = {"mae": float(np.abs(e).mean()), "mse": float((e**2).mean())}
    return out


def measure(args: argparse.Namespace) -> dict[str, Any]:
    step, season = SETS[args.set]
    with tempfile.TemporaryDirectory(prefix="warm-start-") as tmp:
        folder = Path(tmp)
        history, live = split(args.data / f"{args.set}.csv", args.history, args.live, folder)
        warm = config(folder, "warm", live, step, season, args.min_train_steps)
        cold = config(folder, "cold", live, step, season, args.min_train_steps)
        train_s = streamer(
            "train", "-c", str(warm), "--data", str(history), "--time-col", "date",
            "--targets", ",".join(COLUMNS), "--epochs", str(args.epochs),
        )  # fmt: skip
        runs = {}
        for name, path in (("cold", cold), ("warm", warm)):
            seconds = streamer("run", "-c", str(path))
            runs[name] = {**score(folder / f"{name}.lp"), "seconds": round(seconds, 1)}
    return {
        "set": args.set,
        "history_rows": args.history,
        "live_rows": args.live,
        "epochs": args.epochs,
        "train_seconds": round(train_s, 1),
        "date": datetime.now().date().isoformat(),
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", choices=list(SETS), default="ETTh1")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--history", type=int, default=8640)
    parser.add_argument("--live", type=int, default=720)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument(
        "--min-train-steps", type=int, help="model.min_train_steps (default: the config's)"
    )
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    result = measure(args)
    cold, warm = result["runs"]["cold"], result["runs"]["warm"]
    print(
        f"{args.set}: history {args.history} rows, live {args.live} rows; "
        f"train {result['train_seconds']} s"
    )
    print(
        f"{'bucket':<8}{'cold MAE':>10}{'warm MAE':>10}{'ratio':>8}{'cold MSE':>10}{'warm MSE':>10}"
    )
    for bucket in ("h=1", "1..6", "1..24"):
        c, w = cold[bucket], warm[bucket]
        print(
            f"{bucket:<8}{c['mae']:>10.4g}{w['mae']:>10.4g}{w['mae'] / c['mae']:>8.2f}"
            f"{c['mse']:>10.4g}{w['mse']:>10.4g}"
        )
    print(f"answered: cold {cold['served']}, warm {warm['served']}")
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
