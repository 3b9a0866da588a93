"""What the `streamer` commands share: their exit statuses, and reading a config file
with its problems reported the same way by each."""

from __future__ import annotations

import sys

from streamer.config.file import load_config
from streamer.config.schema import StreamerConfig
from streamer.core.errors import ConfigError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130


def load(path: str) -> StreamerConfig | int:
    """The config at path, or the exit status after reporting its problems."""
    try:
        return load_config(path)
    except ConfigError as exc:
        return report(exc)


def report(exc: ConfigError) -> int:
    for problem in exc.problems:
        print(f"{exc.source}: {problem}", file=sys.stderr)
    return EXIT_CONFIG


def one_stream(config: StreamerConfig, stream: str | None, command: str) -> StreamerConfig | int:
    """The config of the stream a command acts on: `stream` (--stream) in a config of
    several, the config itself otherwise; or the exit status after saying what is wrong."""
    configs = config.stream_configs()
    if stream is None and "" in configs:
        return configs[""]
    if stream in configs and stream:
        return configs[stream]
    names = ", ".join(n for n in configs if n)
    if not names:
        problem = f"--stream {stream!r}: the config has no `streams`, only one stream"
    elif stream is None:
        problem = f"the config has several streams ({names}): say which with --stream NAME"
    else:
        problem = f"--stream {stream!r}: the config's streams are {names}"
    print(f"streamer {command}: {problem}", file=sys.stderr)
    return EXIT_CONFIG
