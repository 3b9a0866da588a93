"""What the `streamer` commands share: their exit statuses, and reading a config file
with its problems reported the same way by each."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from streamer.config.file import load_config
from streamer.config.schema import StreamerConfig
from streamer.core.errors import ConfigError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130
EXIT_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a command whose reader left


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


def path_problem(exc: OSError) -> str:
    """An OSError about a file as one line: which file, what is wrong with it, and what
    would do instead."""
    name = exc.filename or "a file"
    if isinstance(exc, IsADirectoryError):
        return f"{name} is a directory; give the path of a file"
    if isinstance(exc, FileExistsError):  # made as a directory, for a path under it
        return f"{name} is a file, not a directory, so nothing can be made under it; move it"
    if isinstance(exc, NotADirectoryError):
        return f"{name}: a part of this path is a file, not a directory; give another path"
    if isinstance(exc, PermissionError):
        return f"{name}: permission denied; change its permissions, or give another path"
    if isinstance(exc, FileNotFoundError):
        return f"{name} cannot be made ({exc.strerror}); give a path in a directory that exists"
    return f"{name}: {exc.strerror or exc}"


def output_problem(flag: str, path: str | None) -> str | None:
    """Why a file that a command is to write when it is done (--output, --plot) could not
    be written, found before the work rather than after it; None when it can be."""
    if path is None:
        return None
    target = Path(path)
    folder = target.parent
    if target.is_dir():
        return f"{flag} {path}: is a directory; give the path of a file"
    if not folder.is_dir():
        return f"{flag} {path}: there is no directory {folder}; make it, or give another path"
    writable = os.access(target if target.exists() else folder, os.W_OK)
    if not writable:
        return f"{flag} {path}: this user may not write there; give another path"
    return None
