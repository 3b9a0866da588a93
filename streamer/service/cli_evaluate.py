"""`streamer evaluate`: its flags, their checks, and the tables (and files) it writes.

The evaluation itself is `streamer.evaluation`, imported when the command runs (it
brings the models in).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from streamer.config.models import COMPARED as DEFAULT_MODELS
from streamer.config.models import MODELS, RETRAIN_SEASONS
from streamer.config.schema import (
    HoltWintersModel,
    ModelBase,
    NetSettings,
    SeasonalNaiveModel,
    SnarimaxModel,
)
from streamer.core.durations import parse_duration
from streamer.core.records import NS_PER_S
from streamer.service import logs
from streamer.service.cli_common import EXIT_CONFIG, EXIT_OK, load, one_stream, output_problem

if TYPE_CHECKING:
    from streamer.evaluation.options import EvaluateOptions, Report


def add_evaluate(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="prequential evaluation of a CSV file: every model, every horizon, no look-ahead",
        description=(
            "Replay a CSV (optionally .gz) through the daemon's own path, one row per step, "
            "with each target column as a series. Models learn online; the LSTM trains on "
            "the warm-up rows and retrains on a schedule in event time. Metrics cover the "
            "forecasts issued after the warm-up, against values that arrived later."
        ),
    )
    _add_file_flags(evaluate)
    _add_model_flags(evaluate)
    _add_output_flags(evaluate)
    evaluate.add_argument(
        "-c", "--config", metavar="FILE", help="take model and retrain settings from this config"
    )
    evaluate.add_argument(
        "--stream", metavar="NAME", help="with -c, a config of several streams: this one's"
    )
    evaluate.set_defaults(handler=run_evaluate)


def _add_file_flags(evaluate: argparse.ArgumentParser) -> None:
    """The file, its columns, the step and horizon, and what of the file is used how."""
    evaluate.add_argument("--data", required=True, metavar="FILE", help="CSV file, or .csv.gz")
    evaluate.add_argument("--time-col", required=True, metavar="COL", help="the time column")
    evaluate.add_argument(
        "--time-unit",
        choices=["s", "ms", "us", "ns", "iso8601"],
        help="unit of the time column (default: ISO 8601, or s when the times are numbers)",
    )
    evaluate.add_argument(
        "--targets", required=True, metavar="COL[,COL...]", help="columns to forecast"
    )
    evaluate.add_argument("--step", required=True, metavar="DURATION", help="e.g. 1h, 1d, 5m")
    evaluate.add_argument("--horizon", type=int, required=True, metavar="H")
    evaluate.add_argument(
        "--warmup-fraction",
        type=float,
        default=0.25,
        metavar="F",
        help="leading share of rows to train on, not scored (default 0.25)",
    )
    evaluate.add_argument(
        "--normalize",
        choices=["none", "standard"],
        default="none",
        help="standard: z-score each target with the mean and std of the warm-up rows (or "
        "of --zscore-rows) (default none)",
    )
    evaluate.add_argument(
        "--rows", type=int, metavar="N", help="use only the first N rows of the file"
    )
    evaluate.add_argument(
        "--zscore-rows",
        type=int,
        metavar="N",
        help="with --normalize standard: take the statistics from the first N rows "
        "(default: the warm-up rows)",
    )


def _add_model_flags(evaluate: argparse.ArgumentParser) -> None:
    """The models compared, their season and how the net (re)trains."""
    evaluate.add_argument(
        "--models",
        default=",".join(DEFAULT_MODELS),
        metavar="M[,M...]",
        help=f"model types, as in a config's model.type: {', '.join(MODELS.types())} (default "
        f"{','.join(DEFAULT_MODELS)}); and lstm_drift_retrain: the LSTM retraining when drift "
        "is detected (on_drift: retrain; the others only record drift)",
    )
    evaluate.add_argument(
        "--season", type=int, metavar="N", help="steps in a season (default: model.season_length)"
    )
    evaluate.add_argument(
        "--retrain-every",
        type=int,
        default=0,
        metavar="STEPS",
        help=f"retrain period of the net in steps of event time (default: {RETRAIN_SEASONS} "
        "seasons)",
    )
    evaluate.add_argument(
        "--warmup-epochs", type=int, default=20, metavar="N", help="epochs of the first training"
    )


def _add_output_flags(evaluate: argparse.ArgumentParser) -> None:
    """The JSON report and the plot."""
    evaluate.add_argument(
        "--output", metavar="FILE", help="write the report as JSON here (with per-series metrics)"
    )
    evaluate.add_argument(
        "--plot",
        metavar="FILE",
        help="write a PNG: actuals, forecasts and intervals of one series by date, and each "
        "model's error by horizon",
    )
    evaluate.add_argument(
        "--plot-series", metavar="COL", help="the series to plot (default: the first target)"
    )
    evaluate.add_argument(
        "--plot-horizon", type=int, default=1, metavar="H", help="the horizon to plot (default 1)"
    )
    evaluate.add_argument(
        "--plot-last",
        type=int,
        default=500,
        metavar="N",
        help="plot the last N scored steps (default 500; 0: all)",
    )


def run_evaluate(args: argparse.Namespace) -> int:
    from streamer.evaluation import evaluate as ev
    from streamer.evaluation import report as report

    logs.configure("WARNING")
    options = _options(args)
    if isinstance(options, int):
        return options
    try:
        result = ev.evaluate(options)
        if args.plot:
            last = args.plot_last or None
            series = args.plot_series or options.targets[0]
            report.plot(result, Path(args.plot), series, args.plot_horizon, last)
    except ev.EvaluateError as exc:
        print(f"streamer evaluate: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    _show(result, args)
    return EXIT_OK


def _checked(args: argparse.Namespace) -> tuple[timedelta, list[str]] | None:
    """The step and the target columns; None after printing what is wrong with the flags."""
    problems = []
    try:
        step = parse_duration(args.step)
    except ValueError as exc:
        problems.append(f"--step: {exc}")
        step = None
    if args.horizon < 1:
        problems.append(f"--horizon: must be 1 or more, got {args.horizon}")
    if not 0 < args.warmup_fraction < 1:
        problems.append(f"--warmup-fraction: must be in (0, 1), got {args.warmup_fraction}")
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if not targets:
        problems.append("--targets: name at least one column")
    for flag, path in (("--output", args.output), ("--plot", args.plot)):
        problem = output_problem(flag, path)
        problems += [problem] if problem else []
    if problems or step is None or step.total_seconds() <= 0:
        for problem in problems or ["--step: must be more than 0"]:
            print(f"streamer evaluate: {problem}", file=sys.stderr)
        return None
    return step, targets


def _options(args: argparse.Namespace) -> EvaluateOptions | int:
    """The options the flags (and the -c config) ask for, or the exit status."""
    from streamer.evaluation import report as report
    from streamer.evaluation.options import EvaluateOptions

    checked = _checked(args)
    if checked is None:
        return EXIT_CONFIG
    step, targets = checked
    model, retrain = None, None
    season = NetSettings().season_length
    if args.config:
        loaded = load(args.config)
        config = loaded if isinstance(loaded, int) else one_stream(loaded, args.stream, "evaluate")
        if isinstance(config, int):
            return config
        retrain, model = config.retrain, config.model
        configured = _season_length(config.model)
        season = season if configured is None else configured
    return EvaluateOptions(
        data=Path(args.data),
        time_col=args.time_col,
        targets=targets,
        step_ns=round(step.total_seconds() * NS_PER_S),
        horizon=args.horizon,
        warmup_fraction=args.warmup_fraction,
        normalize=args.normalize,
        models=tuple(m.strip() for m in args.models.split(",") if m.strip()),
        season=args.season or season,
        time_unit=args.time_unit,
        model=model,
        retrain=retrain,
        retrain_every=args.retrain_every,
        warmup_epochs=args.warmup_epochs,
        rows=args.rows,
        zscore_rows=args.zscore_rows,
        progress=report.ProgressBar(),
    )


def _season_length(model: ModelBase) -> int | None:
    """The season length a model section sets, or None for a model without one."""
    if isinstance(model, NetSettings | SeasonalNaiveModel | SnarimaxModel | HoltWintersModel):
        return model.season_length
    return None


def _show(result: Report, args: argparse.Namespace) -> None:
    """The tables on stdout, and the JSON report where --output asks for it."""
    from streamer.evaluation import report as report

    print(report.table(result))
    print()
    print(report.series_table(result))
    if args.output:
        Path(args.output).write_text(json.dumps(result.as_json(), indent=2, allow_nan=False) + "\n")
