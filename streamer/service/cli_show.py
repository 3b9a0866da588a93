"""`streamer show`: read back what a sink holds (`streamer.service.show`)."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from streamer.config.schema import FileSink, InfluxSink, StreamerConfig, sink_name
from streamer.service.cli_common import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_OK,
    load,
    output_problem,
)

_SINCE = re.compile(
    r"^(0|-(\d+(ns|us|ms|s|m|h|d|w|mo|y))+|\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d{2}:\d{2}))$"
)


def add_show(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], default_config: str, env: str
) -> None:
    show = commands.add_parser(
        "show",
        help="read back what a sink holds: each series' latest value, forecast, interval, "
        "recent error and model; or one series' values and forecasts (--series, --plot)",
    )
    show.add_argument(
        "-c",
        "--config",
        default=os.environ.get(env) or default_config,
        metavar="FILE",
        help=f"config file (default: ${env}, else {default_config})",
    )
    show.add_argument(
        "--sink",
        metavar="NAME",
        help="which sink to read, by name (default: the first InfluxDB or file sink)",
    )
    show.add_argument("--series", metavar="NAME", help="show this series step by step")
    show.add_argument("--plot", metavar="FILE", help="with --series: draw it to this PNG")
    show.add_argument("--horizon", type=int, default=1, metavar="H", help="with --series (1)")
    show.add_argument(
        "--last", type=int, default=200, metavar="N", help="with --series: the last N steps (200)"
    )
    show.add_argument(
        "--errors", type=int, default=50, metavar="N", help="recent MAE over the last N errors (50)"
    )
    show.add_argument("--limit", type=int, default=50, metavar="N", help="rows of the table (50)")
    show.add_argument(
        "--since",
        default="0",
        metavar="TIME",
        help="InfluxDB: read points from this time on, a duration before now (-7d) or an "
        "RFC 3339 time (default: all)",
    )
    show.set_defaults(handler=run_show)


def run_show(args: argparse.Namespace) -> int:
    from connectors.readback import ReadbackError

    config = load(args.config)
    if isinstance(config, int):
        return config
    problem = _flag_problem(args)
    if problem:
        return _fail(problem, EXIT_CONFIG)
    try:
        read = _Reader(_sink(config, args.sink))
        try:
            return _summary(read, args) if args.series is None else _series(read, args)
        finally:
            read.close()
    except (ReadbackError, ValueError) as exc:
        return _fail(str(exc), EXIT_FAILED if isinstance(exc, ReadbackError) else EXIT_CONFIG)


def _flag_problem(args: argparse.Namespace) -> str | None:
    if args.plot and not args.series:
        return "--plot draws one series: give --series NAME"
    if args.horizon < 1 or args.last < 0 or args.errors < 1 or args.limit < 1:
        return "--horizon, --errors and --limit must be 1 or more, --last 0 or more"
    if not _SINCE.match(args.since):
        return f"--since {args.since!r}: give a duration before now (-7d) or an RFC 3339 time"
    return output_problem("--plot", args.plot)


def _sink(config: StreamerConfig, name: str | None) -> InfluxSink | FileSink:
    names = {sink_name(s, i): s for i, s in enumerate(config.sinks)}
    if name is not None:
        if name not in names:
            raise ValueError(f"--sink {name!r}: the config's sinks are {', '.join(names)}")
        chosen = names[name]
        if not isinstance(chosen, InfluxSink | FileSink):
            raise ValueError(
                f"--sink {name!r} is a {chosen.type} sink; show reads InfluxDB and files"
            )
        return chosen
    for sink in config.sinks:
        if isinstance(sink, InfluxSink | FileSink):
            return sink
    raise ValueError("the config has no InfluxDB or file sink to read back")


class _Reader:
    """Points from the chosen sink: a summary's, or one series'."""

    def __init__(self, sink: InfluxSink | FileSink) -> None:
        from connectors.readback import InfluxReadback

        self.sink = sink
        self.influx: InfluxReadback | None = None
        if isinstance(sink, InfluxSink):
            self.influx = InfluxReadback(
                sink.url,
                sink.org,
                sink.token.get_secret_value(),
                sink.bucket,
                str(sink.ca_file) if sink.ca_file else None,
                sink.verify_ssl,
                max(sink.timeout.total_seconds(), 60.0),
            )

    def summary(self, since: str, errors: int) -> Iterator[Any]:
        from connectors.readback import file_points

        if self.influx is not None:
            return self.influx.summary_points(since, errors)
        assert isinstance(self.sink, FileSink)
        return file_points(self.sink.path, self.sink.format)

    def series(self, name: str, horizon: int, since: str) -> Iterator[Any]:
        from connectors.readback import file_points

        if self.influx is not None:
            return self.influx.series_points(name, horizon, since)
        assert isinstance(self.sink, FileSink)
        return file_points(self.sink.path, self.sink.format)

    def close(self) -> None:
        if self.influx is not None:
            self.influx.close()


def _summary(read: _Reader, args: argparse.Namespace) -> int:
    from streamer.service import show

    rows = show.summarise(read.summary(args.since, args.errors), args.errors)
    if not rows:
        return _fail(f"{read.sink.describe()} holds no points of any series yet", EXIT_FAILED)
    print(f"{read.sink.describe()}: {len(rows)} series")
    print(show.table(rows, args.limit))
    return EXIT_OK


def _series(read: _Reader, args: argparse.Namespace) -> int:
    from streamer.service import show

    t = show.trace(read.series(args.series, args.horizon, args.since), args.series, args.horizon)
    if not t.observed and not t.forecast:
        return _fail(f"{read.sink.describe()} holds nothing of series {args.series!r}", EXIT_FAILED)
    if args.plot:
        from streamer.evaluation.report import pyplot

        drawn = show.plot(t, Path(args.plot), args.last or None, pyplot())
        print(
            f"wrote {args.plot}: {args.series}, {drawn} values and the forecasts at "
            f"horizon {args.horizon}"
        )
        return EXIT_OK
    print(show.series_table(t, args.last or None))
    return EXIT_OK


def _fail(message: str, status: int) -> int:
    print(f"streamer show: {message}", file=sys.stderr)
    return status
