"""The `streamer` command: `run`, `evaluate`, `demo-produce`, `config validate` and
`config show`.

Exit status: 0 when all is well, 1 when a source or sink cannot be used, 2 for a config
(or command line) that cannot be used, 130 when stopped at once by a second signal.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

import yaml

from streamer.config.file import load_config
from streamer.config.models import COMPARED as DEFAULT_MODELS
from streamer.config.models import MODELS, RETRAIN_SEASONS
from streamer.config.schema import NetSettings, StreamerConfig
from streamer.core.durations import parse_duration
from streamer.core.errors import ConfigError, SinkUnusableError, SourceError
from streamer.core.records import NS_PER_S
from streamer.service import logs

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130
DEFAULT_CONFIG = "config/demo.yaml"
CONFIG_ENV = "STREAMER_CONFIG"  # the config file when -c is not given (the image sets it)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    return int(args.handler(args))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamer", description="Streaming time-series forecasting daemon."
    )
    parser.add_argument("--version", action="version", version=f"streamer {version('streamer')}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the daemon until SIGINT/SIGTERM or the end of data")
    run.add_argument(
        "-c",
        "--config",
        default=os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG,
        metavar="FILE",
        help=f"config file (default: ${CONFIG_ENV}, else {DEFAULT_CONFIG}: the demo replay)",
    )
    run.set_defaults(handler=_run)

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
    evaluate.add_argument(
        "-c", "--config", metavar="FILE", help="take model and retrain settings from this config"
    )
    evaluate.set_defaults(handler=_evaluate)

    demo = commands.add_parser(
        "demo-produce",
        help="send realistic synthetic price ticks and sensor readings to Kafka and/or MQTT",
    )
    demo.add_argument("--kafka", metavar="HOST:PORT", help="Kafka bootstrap server")
    demo.add_argument("--ticks-topic", default="streamer-ticks", metavar="TOPIC")
    demo.add_argument("--readings-topic", default="streamer-readings", metavar="TOPIC")
    demo.add_argument("--mqtt", metavar="HOST:PORT", help="MQTT broker")
    for broker in ("kafka", "mqtt"):
        demo.add_argument(
            f"--{broker}-streams",
            default="ticks,readings",
            metavar="LIST",
            help=f"what goes to --{broker}: ticks, readings or both (default ticks,readings)",
        )
    demo.add_argument(
        "--mqtt-prefix",
        default="streamer",
        metavar="PREFIX",
        help="publish to PREFIX/ticks/<symbol> and PREFIX/sensors/<sensor> (QoS 1)",
    )
    demo.add_argument("--symbols", type=int, default=20, metavar="N")
    demo.add_argument("--sensors", type=int, default=20, metavar="N")
    demo.add_argument(
        "--step", default="1s", metavar="DURATION", help="time between events of a series"
    )
    demo.add_argument(
        "--duration", metavar="DURATION", help="stop after this long (default: never)"
    )
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(handler=_demo_produce)

    config = commands.add_parser("config", help="check or print a config file")
    config_commands = config.add_subparsers(required=True, metavar="ACTION")
    validate = config_commands.add_parser(
        "validate", help="exit 0 if FILE is valid, else 2 with one line per problem"
    )
    validate.add_argument("file", metavar="FILE")
    validate.set_defaults(handler=_config_validate)
    show = config_commands.add_parser(
        "show", help="print the effective config (defaults, ${VAR}s and overrides applied)"
    )
    show.add_argument("file", metavar="FILE")
    show.set_defaults(handler=_config_show)
    return parser


def _run(args: argparse.Namespace) -> int:
    from streamer.service.daemon import run

    config = _load(args.config)
    if isinstance(config, int):
        return config
    logs.configure(config.logging.level, config.logging.format)
    json_logs = config.logging.format == "json"
    try:
        result = run(config)
    except ConfigError as exc:
        return _report(exc)
    except (SourceError, SinkUnusableError) as exc:
        _say(f"{args.config}: {exc}", json_logs, logging.ERROR)
        return EXIT_FAILED
    except KeyboardInterrupt:
        message = "stopped at once by a second signal; the last checkpoint stands"
        _say(message, json_logs, logging.WARNING)
        return EXIT_INTERRUPTED
    c = result.counters
    rejected = ", ".join(f"{n} {reason}" for reason, n in c.rejected.most_common()) or "none"
    dead_letter = config.pipeline.dead_letter
    if c.rejected_total and dead_letter is not None:
        rejected += f", sent to {_describe_sink(dead_letter)}"
    sinks = ", ".join(_describe_sink(s) for s in config.sinks)
    summary = (
        f"done: {c.events_in} events read, {c.rejected_total} rejected ({rejected}), "
        f"{result.series} series, {c.steps_closed} steps, {c.forecasts_out} forecasts "
        f"written to {sinks}"
    )
    _say(summary, json_logs, logging.INFO)
    if result.model_errors:
        _say(_error_summary(result.model_errors), json_logs, logging.INFO)
    return EXIT_OK


def _error_summary(errors: dict[str, float]) -> str:
    """`forecast error over the run (MSE, ...): lstm 1.2 (0.85x last_value), last_value
    1.4`: each member's error, against the last value where it is one of them."""
    reference = errors.get("last_value")
    parts = []
    for name, mse in errors.items():
        ratio = ""
        if reference and name != "last_value" and math.isfinite(mse):
            ratio = f" ({mse / reference:.2f}x last_value)"
        parts.append(f"{name} {mse:.4g}{ratio}")
    return "forecast error over the run (MSE, all series and horizons): " + ", ".join(parts)


def _say(message: str, json_logs: bool, level: int) -> None:
    """The run's last word: a JSON log record when the logs are JSON (a container's log
    collector reads one object a line), else plain text (the summary on stdout)."""
    if json_logs:
        logging.getLogger("streamer").log(level, message)
    elif level >= logging.WARNING:
        print(message, file=sys.stderr)
    else:
        print(message)


def _evaluate(args: argparse.Namespace) -> int:
    from streamer.evaluation import evaluate as ev
    from streamer.evaluation import report as report

    logs.configure("WARNING")
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
    if problems or step is None or step.total_seconds() <= 0:
        for problem in problems or ["--step: must be more than 0"]:
            print(f"streamer evaluate: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    model, retrain = None, None
    season = NetSettings().season_length
    if args.config:
        config = _load(args.config)
        if isinstance(config, int):
            return config
        retrain, model = config.retrain, config.model
        season = getattr(config.model, "season_length", season)
    options = ev.EvaluateOptions(
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
    try:
        result = ev.evaluate(options)
        if args.plot:
            last = args.plot_last or None
            series = args.plot_series or targets[0]
            report.plot(result, Path(args.plot), series, args.plot_horizon, last)
    except ev.EvaluateError as exc:
        print(f"streamer evaluate: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    print(report.table(result))
    print()
    print(report.series_table(result))
    if args.output:
        Path(args.output).write_text(json.dumps(result.as_json(), indent=2) + "\n")
    return EXIT_OK


def _demo_produce(args: argparse.Namespace) -> int:
    from connectors.demo_produce import KafkaOutput, MqttOutput, Output, produce

    logs.configure("INFO")
    if not args.kafka and not args.mqtt:
        print(
            "streamer demo-produce: give --kafka HOST:PORT, --mqtt HOST:PORT or both",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    try:
        step = parse_duration(args.step).total_seconds()
        duration = parse_duration(args.duration).total_seconds() if args.duration else None
        routes = {b: _streams(b, getattr(args, f"{b}_streams")) for b in ("kafka", "mqtt")}
    except ValueError as exc:
        print(f"streamer demo-produce: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    outputs: list[tuple[Output, set[str]]] = []
    if args.kafka:
        kafka = KafkaOutput(args.kafka, args.ticks_topic, args.readings_topic)
        outputs.append((kafka, routes["kafka"]))
    if args.mqtt:
        outputs.append((MqttOutput(args.mqtt, args.mqtt_prefix), routes["mqtt"]))

    def send(stream: str, key: str, payload: bytes) -> None:
        for output, streams in outputs:
            if stream in streams:
                output.send(stream, key, payload)

    sent = 0
    try:
        sent = produce(
            send,
            symbols=args.symbols,
            sensors=args.sensors,
            step_s=step,
            duration_s=duration,
            seed=args.seed,
        )
    except KeyboardInterrupt:
        pass
    finally:
        for output, _ in outputs:
            output.close()
    print(f"sent {sent} events")
    return EXIT_OK


def _streams(broker: str, text: str) -> set[str]:
    """`--kafka-streams` / `--mqtt-streams`: a comma-separated subset of ticks, readings."""
    chosen = {s.strip() for s in text.split(",") if s.strip()}
    unknown = chosen - {"ticks", "readings"}
    if unknown or not chosen:
        raise ValueError(
            f"--{broker}-streams: {text!r} is not a list of ticks and/or readings "
            "(e.g. ticks,readings)"
        )
    return chosen


def _describe_sink(sink: object) -> str:
    kind = getattr(sink, "type", "?")
    where = getattr(sink, "path", None) or getattr(sink, "url", None) or getattr(sink, "topic", "")
    return f"{kind} {where}"


def _config_validate(args: argparse.Namespace) -> int:
    config = _load(args.file)
    if isinstance(config, int):
        return config
    print(f"{args.file}: valid: {config.summary()}")
    return EXIT_OK


def _config_show(args: argparse.Namespace) -> int:
    config = _load(args.file)
    if isinstance(config, int):
        return config
    # JSON mode prints secrets as '**********' and durations as '10s'.
    print(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), end="")
    return EXIT_OK


def _load(path: str) -> StreamerConfig | int:
    """The config at path, or the exit status after reporting its problems."""
    try:
        return load_config(path)
    except ConfigError as exc:
        return _report(exc)


def _report(exc: ConfigError) -> int:
    for problem in exc.problems:
        print(f"{exc.source}: {problem}", file=sys.stderr)
    return EXIT_CONFIG
