"""The `streamer` command: `streamer config validate FILE`, `streamer config show FILE`.

Exit status: 0 when all is well, 2 for a config (or command line) that cannot be used.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import version

import yaml

from streamer.config_file import load_config
from streamer.errors import ConfigError

EXIT_OK = 0
EXIT_CONFIG = 2


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


def _config_validate(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.file)
    except ConfigError as exc:
        return _report(exc)
    print(f"{args.file}: valid: {config.summary()}")
    return EXIT_OK


def _config_show(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.file)
    except ConfigError as exc:
        return _report(exc)
    # JSON mode prints secrets as '**********' and durations as '10s'.
    print(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), end="")
    return EXIT_OK


def _report(exc: ConfigError) -> int:
    for problem in exc.problems:
        print(f"{exc.source}: {problem}", file=sys.stderr)
    return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
