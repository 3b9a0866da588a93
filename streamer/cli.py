"""The `streamer` command: `run`, `config validate` and `config show`.

Exit status: 0 when all is well, 1 when a source or sink cannot be used, 2 for a config
(or command line) that cannot be used, 130 when stopped at once by a second signal.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import version

import yaml

from streamer import logs
from streamer.config import StreamerConfig
from streamer.config_file import load_config
from streamer.errors import ConfigError, SourceError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130
DEFAULT_CONFIG = "config/demo.yaml"


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
        default=DEFAULT_CONFIG,
        metavar="FILE",
        help=f"config file (default: {DEFAULT_CONFIG}, the bundled demo replay)",
    )
    run.set_defaults(handler=_run)

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
    from streamer.daemon import run

    config = _load(args.config)
    if isinstance(config, int):
        return config
    logs.configure(config.logging.level, config.logging.format)
    try:
        result = run(config)
    except ConfigError as exc:
        return _report(exc)
    except SourceError as exc:
        print(f"{args.config}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("stopped at once by a second signal; the last checkpoint stands", file=sys.stderr)
        return EXIT_INTERRUPTED
    c = result.counters
    rejected = ", ".join(f"{n} {reason}" for reason, n in c.rejected.most_common()) or "none"
    dead_letter = config.pipeline.dead_letter
    if c.rejected_total and dead_letter is not None:
        rejected += f", sent to {_describe_sink(dead_letter)}"
    sinks = ", ".join(_describe_sink(s) for s in config.sinks)
    print(
        f"done: {c.events_in} events read, {c.rejected_total} rejected ({rejected}), "
        f"{result.series} series, {c.steps_closed} steps, {c.forecasts_out} forecasts "
        f"written to {sinks}"
    )
    return EXIT_OK


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


if __name__ == "__main__":
    sys.exit(main())
