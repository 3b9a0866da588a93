"""`streamer train`: train the config's model on history and write the checkpoint that
`streamer run` starts from (`streamer.evaluation.train`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from streamer.service import logs
from streamer.service.cli_common import EXIT_CONFIG, EXIT_OK, load


def add_train(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], default_config: str, env: str
) -> None:
    train = commands.add_parser(
        "train",
        help="train the config's model on a history file and write the checkpoint "
        "`streamer run` starts from",
        description=(
            "Replay a CSV (optionally .gz; one column per series, as `evaluate` reads it) "
            "through the config's window and model. The model trains on all but the last "
            "--holdout-fraction of the rows, forecasts those one step at a time (the "
            "held-out error, next to the last value's), then trains once more on every "
            "row. The weights, scalers and each series' state go to the config's "
            "checkpoint.path; `streamer run -c` the same config continues from them, its "
            "sources where they start and its sinks fresh."
        ),
    )
    train.add_argument(
        "-c",
        "--config",
        default=os.environ.get(env) or default_config,
        metavar="FILE",
        help=f"the config `streamer run` will use (default: ${env}, else {default_config})",
    )
    train.add_argument("--data", required=True, metavar="FILE", help="CSV file, or .csv.gz")
    train.add_argument("--time-col", required=True, metavar="COL", help="the time column")
    train.add_argument(
        "--time-unit",
        choices=["s", "ms", "us", "ns", "iso8601"],
        help="unit of the time column (default: ISO 8601, or s when the times are numbers)",
    )
    train.add_argument(
        "--targets",
        required=True,
        metavar="COL[,COL...]",
        help="columns to train on, each a series named as the column (name them as the "
        "live series are named)",
    )
    train.add_argument(
        "--kind",
        choices=["price", "sensor"],
        help="what the columns are (default: the `kind` of the config's sources)",
    )
    train.add_argument("--rows", type=int, metavar="N", help="use only the first N rows")
    train.add_argument(
        "--holdout-fraction",
        type=float,
        default=0.2,
        metavar="F",
        help="trailing share of rows forecast before they are trained on (default 0.2)",
    )
    train.add_argument(
        "--epochs",
        type=int,
        default=20,
        metavar="N",
        help="epochs of the first training and of the last one (default 20)",
    )
    train.add_argument(
        "--retrain-every",
        type=int,
        default=0,
        metavar="STEPS",
        help="retrains while the held-out rows are forecast, in steps (default: 4 seasons)",
    )
    train.add_argument(
        "--replace",
        action="store_true",
        help="overwrite the checkpoint that is there (by default an existing one is kept "
        "and the command fails)",
    )
    train.set_defaults(handler=run_train)


def run_train(args: argparse.Namespace) -> int:
    from streamer.evaluation import report
    from streamer.evaluation.options import EvaluateError
    from streamer.evaluation.train import TRAINED, TrainOptions, train

    config = load(args.config)
    if isinstance(config, int):
        return config
    logs.configure("WARNING")
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if not targets:
        print("streamer train: --targets: name at least one column", file=sys.stderr)
        return EXIT_CONFIG
    options = TrainOptions(
        data=Path(args.data),
        time_col=args.time_col,
        targets=targets,
        time_unit=args.time_unit,
        rows=args.rows,
        kind=args.kind,
        holdout_fraction=args.holdout_fraction,
        epochs=args.epochs,
        retrain_every=args.retrain_every,
        replace=args.replace,
        progress=report.ProgressBar(),
        say=lambda text: print(text, file=sys.stderr, flush=True),
    )
    try:
        done = train(config, options)
    except EvaluateError as exc:
        print(f"streamer train: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    print(report.table(done.report))
    held_out = done.report.models[TRAINED]
    net = f" version {done.version}" if done.version else ""
    rows = f"{done.report.rows} rows of {len(targets)} series"
    print()
    print(
        f"held-out MAE {held_out['mae_avg']:.4g} (last value: "
        f"{done.report.models['last_value']['mae_avg']:.4g}) over "
        f"{held_out['n_forecasts']} forecasts"
    )
    print(
        f"wrote {done.checkpoint} (checkpoint {done.checkpoint_id}): {config.model.type}{net}, "
        f"trained on {rows}; `streamer run -c {args.config}` starts from it"
    )
    return EXIT_OK
