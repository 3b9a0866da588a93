"""The `streamer` command: `run`, `evaluate`, `demo-produce`, `bridge`, `config validate`
and `config show`.

Exit status: 0 when all is well, 1 when a source or sink cannot be used, 2 for a config
(or command line) that cannot be used, 130 when stopped at once (a second signal, or
shutdown_timeout passed), 141 when the reader of the output closed it (as after SIGPIPE).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Sequence
from importlib.metadata import version
from typing import TYPE_CHECKING

import yaml

from streamer.config.secrets import secret_values
from streamer.core.errors import ConfigError, SinkError, SinkUnusableError, SourceError
from streamer.service import logs
from streamer.service.cli_common import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PIPE,
    load,
    path_problem,
    report,
)
from streamer.service.cli_demo import add_demo
from streamer.service.cli_evaluate import add_evaluate
from streamer.service.cli_model import add_model
from streamer.service.cli_show import add_show
from streamer.service.cli_train import add_train

if TYPE_CHECKING:
    from streamer.config.schema import StreamerConfig
    from streamer.service.daemon import RunResult

DEFAULT_CONFIG = "config/demo.yaml"
CONFIG_ENV = "STREAMER_CONFIG"  # the config file when -c is not given (the image sets it)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status. Output cut short by its reader
    (`streamer show | head`) ends quietly, as a command killed by SIGPIPE does, and a
    file that cannot be read or written is said in one line rather than a traceback."""
    args = _parser().parse_args(argv)
    try:
        status = int(args.handler(args))
        sys.stdout.flush()  # here, where a closed pipe can still be caught
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return EXIT_PIPE
    except OSError as exc:
        if exc.filename is None:
            raise
        print(f"streamer {args.command}: {path_problem(exc)}", file=sys.stderr)
        return EXIT_FAILED
    return status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamer", description="Streaming time-series forecasting daemon."
    )
    parser.add_argument("--version", action="version", version=f"streamer {version('streamer')}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND", dest="command")
    _add_run(commands)
    add_evaluate(commands)
    add_train(commands, DEFAULT_CONFIG, CONFIG_ENV)
    add_model(commands, DEFAULT_CONFIG, CONFIG_ENV)
    add_show(commands, DEFAULT_CONFIG, CONFIG_ENV)
    add_demo(commands)
    _add_bridge(commands)
    _add_config(commands)
    return parser


def _add_run(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser("run", help="run the daemon until SIGINT/SIGTERM or the end of data")
    run.add_argument(
        "-c",
        "--config",
        default=os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG,
        metavar="FILE",
        help=f"config file (default: ${CONFIG_ENV}, else {DEFAULT_CONFIG}: the demo replay)",
    )
    run.set_defaults(handler=_run)


def _add_bridge(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bridge = commands.add_parser(
        "bridge",
        help="forward the config's MQTT sources to its Kafka sink's topic, keyed by series "
        "(one instance, for a group of replicas: docs/scaling.md)",
    )
    bridge.add_argument("-c", "--config", required=True, metavar="FILE", help="config file")
    bridge.set_defaults(handler=_bridge)


def _bridge(args: argparse.Namespace) -> int:
    import signal
    import threading

    from streamer.service.bridge import bridge_target, run_bridge

    config = load(args.config)
    if isinstance(config, int):
        return config
    logs.configure(config.logging.level, config.logging.format, secret_values(config))
    try:
        bridge_target(config)
    except ValueError as exc:
        print(f"{args.config}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        counters = run_bridge(config, stop)
    except (SourceError, SinkError) as exc:
        print(f"{args.config}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(
        f"done: {counters.messages} messages, {counters.forwarded} values forwarded, "
        f"{counters.rejected} rejected"
    )
    return EXIT_OK


def _add_config(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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


def _run(args: argparse.Namespace) -> int:
    from streamer.service.daemon import run

    config = load(args.config)
    if isinstance(config, int):
        return config
    logs.configure(config.logging.level, config.logging.format, secret_values(config))
    json_logs = config.logging.format == "json"
    try:
        result = run(config)
    except ConfigError as exc:
        return report(exc)
    except (SourceError, SinkUnusableError) as exc:
        _say(f"{args.config}: {exc}", json_logs, logging.ERROR)
        return EXIT_FAILED
    except KeyboardInterrupt as exc:
        why = str(exc) or "an interrupt"
        message = f"stopped at once ({why}); the last checkpoint stands"
        _say(message, json_logs, logging.WARNING)
        return EXIT_INTERRUPTED
    configs = config.stream_configs()
    for name, outcome in (result.streams or {"": result}).items():
        prefix = f"stream {name}: " if name else ""
        _say(prefix + _summary(configs[name], outcome), json_logs, logging.INFO)
        if outcome.model_errors:
            _say(prefix + _error_summary(outcome.model_errors), json_logs, logging.INFO)
    return EXIT_OK


def _summary(config: StreamerConfig, result: RunResult) -> str:
    """`done: N events read, ...`: what one stream's run did."""
    c = result.counters
    rejected = ", ".join(f"{n} {reason}" for reason, n in c.rejected.most_common()) or "none"
    dead_letter = config.pipeline.dead_letter
    if c.rejected_total and dead_letter is not None:
        rejected += f", sent to {dead_letter.describe()}"
    sinks = ", ".join(s.describe() for s in config.sinks)
    return (
        f"done: {c.events_in} events read, {c.rejected_total} rejected ({rejected}), "
        f"{result.series} series, {c.steps_closed} steps, {c.forecasts_out} forecasts "
        f"written to {sinks}"
    )


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


def _config_validate(args: argparse.Namespace) -> int:
    config = load(args.file)
    if isinstance(config, int):
        return config
    print(f"{args.file}: valid: {config.summary()}")
    return EXIT_OK


def _config_show(args: argparse.Namespace) -> int:
    config = load(args.file)
    if isinstance(config, int):
        return config
    # JSON mode prints secrets as '**********' and durations as '10s'.
    print(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), end="")
    return EXIT_OK
