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
