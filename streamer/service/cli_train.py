"""`streamer train`: train the config's model on history and write the checkpoint that
`streamer run` starts from (`streamer.evaluation.train`)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from streamer.config.schema import StreamerConfig
from streamer.core.errors import ConfigError
from streamer.service import logs
from streamer.service.cli_common import EXIT_CONFIG, EXIT_OK, load, one_stream, report

if TYPE_CHECKING:
    from connectors.codecs import TimeUnit


def add_train(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], default_config: str, env: str
) -> None:
    train = commands.add_parser(
        "train",
        help="train the config's model on a history file and write the checkpoint "
        "`streamer run` starts from",
        description=(
            "Replay a CSV (optionally .gz; one column per series, as `evaluate` reads it, "
            "or one reading a line with --series-col), or what InfluxDB holds "
            "(--from-influx), through the config's window and model. The model trains on "
            "all but the last --holdout-fraction of the rows, forecasts those one step at "
            "a time (the held-out error, next to the last value's), then trains once more "
            "on every row. The weights, scalers and each series' state go to the config's "
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
    train.add_argument(
        "--stream", metavar="NAME", help="in a config of several streams: the one to train"
    )
    _add_history_flags(train)
    _add_training_flags(train)
    train.set_defaults(handler=run_train)


def _add_history_flags(train: argparse.ArgumentParser) -> None:
    """Where the history is: a file (wide or long) or InfluxDB, and its columns."""
    history = train.add_mutually_exclusive_group(required=True)
    history.add_argument("--data", metavar="FILE", help="CSV file, or .csv.gz")
    history.add_argument(
        "--from-influx",
        action="store_true",
        help="read the history from InfluxDB, with the url, org and token of the config's "
        "InfluxDB sink: by default what the daemon wrote there (--measurement observed)",
    )
    train.add_argument("--time-col", metavar="COL", help="the time column (with --data)")
    train.add_argument(
        "--series-col",
        metavar="COL",
        help="with --data: the file is long, one reading a line (as a replay source reads "
        "it), this column naming the series; --value-col the value",
    )
    train.add_argument("--value-col", metavar="COL", help="with --series-col: the value column")
    train.add_argument(
        "--time-unit",
        choices=["s", "ms", "us", "ns", "iso8601"],
        help="unit of the time column (default: ISO 8601, or s when the times are numbers)",
    )
    train.add_argument(
        "--targets",
        metavar="COL[,COL...]",
        help="columns to train on, each a series named as the column (name them as the "
        "live series are named); needed with --data, with --from-influx the series to "
        "keep (default: all)",
    )
    influx = train.add_argument_group("--from-influx")
    influx.add_argument("--bucket", help="default: the InfluxDB sink's bucket")
    influx.add_argument("--measurement", default="observed", help="default: observed")
    influx.add_argument("--field", default="value", help="default: value")
    influx.add_argument(
        "--series-tag", default="series", metavar="TAG", help="the tag naming the series (series)"
    )
    influx.add_argument(
        "--start", default="-30d", help="a duration before now or an RFC 3339 time (-30d)"
    )
    influx.add_argument("--stop", default="now()", help="the same, or now() (the default)")


def _add_training_flags(train: argparse.ArgumentParser) -> None:
    """What the columns are, how much is held out, how long it trains, and overwriting."""
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
        help="retrains while the held-out rows are forecast, in steps (default: 10 seasons)",
    )
    train.add_argument(
        "--replace",
        action="store_true",
        help="overwrite the checkpoint that is there (by default an existing one is kept "
        "and the command fails)",
    )


def run_train(args: argparse.Namespace) -> int:
    from streamer.evaluation.influx_history import TIME_COL
    from streamer.evaluation.long_file import pivot
    from streamer.evaluation.options import EvaluateError

    loaded = load(args.config)
    if isinstance(loaded, int):
        return loaded
    config = one_stream(loaded, args.stream, "train")
    if isinstance(config, int):
        return config
    logs.configure("WARNING")
    targets = [t.strip() for t in (args.targets or "").split(",") if t.strip()]
    try:
        if not args.from_influx and not args.series_col:
            if not args.time_col or not targets:
                raise EvaluateError(
                    "--data needs --time-col and --targets (the series' columns), or, for a "
                    "file of one reading a line, --time-col, --series-col and --value-col"
                )
            return _train(config, args, Path(args.data), args.time_col, targets)
        if args.series_col:
            if not args.time_col or not args.value_col:
                raise EvaluateError("--series-col needs --time-col and --value-col")
            with tempfile.TemporaryDirectory(prefix="streamer-train-") as folder:
                data = Path(folder) / "history.csv"
                found = pivot(Path(args.data), args.time_col, args.series_col, args.value_col, data)
                _say(f"read {len(found)} series from {args.data}")
                return _train(config, args, data, args.time_col, _kept(targets, found))
        with tempfile.TemporaryDirectory(prefix="streamer-train-") as folder:
            data, found = _from_influx(config, args, Path(folder))
            return _train(config, args, data, TIME_COL, _kept(targets, found), "iso8601")
    except EvaluateError as exc:
        print(f"streamer train: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except ConfigError as exc:  # a checkpoint path that cannot be a checkpoint
        return report(exc)


def _kept(targets: list[str], found: list[str]) -> list[str]:
    """The series --targets keeps of those the history has (all of them without it)."""
    from streamer.evaluation.options import EvaluateError

    missing = sorted(set(targets) - set(found))
    if missing:
        raise EvaluateError(f"--targets: no history for {', '.join(missing)}")
    return targets or found


def _from_influx(
    config: StreamerConfig, args: argparse.Namespace, folder: Path
) -> tuple[Path, list[str]]:
    """The history the flags ask for, as a wide CSV in `folder`, and its series."""
    from streamer.evaluation.influx_history import InfluxHistory, fetch

    history = InfluxHistory(
        args.measurement, args.field, args.series_tag, args.start, args.stop, args.bucket
    )
    data = folder / "history.csv"
    series = fetch(config, history, data, _say)
    _say(f"read {len(series)} series from InfluxDB")
    return data, series


def _train(
    config: StreamerConfig,
    args: argparse.Namespace,
    data: Path,
    time_col: str,
    targets: list[str],
    time_unit: TimeUnit | None = None,
) -> int:
    from streamer.evaluation import report
    from streamer.evaluation.train import TRAINED, TrainOptions, train
    from streamer.service.cli_model import checkpoint_settings

    options = TrainOptions(
        data=data,
        time_col=time_col,
        targets=targets,
        time_unit=args.time_unit or time_unit,
        rows=args.rows,
        kind=args.kind,
        holdout_fraction=args.holdout_fraction,
        epochs=args.epochs,
        retrain_every=args.retrain_every,
        replace=args.replace,
        made_for=checkpoint_settings(config),
        progress=report.ProgressBar(),
        say=_say,
    )
    done = train(config, options)
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


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
