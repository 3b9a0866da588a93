"""Streamer's own exceptions: third-party errors are translated into these at the edges.

    StreamerError           anything Streamer reports on purpose
     ├── ConfigError        the config file, a ${VAR} reference or a STREAMER__ override
     │                      is invalid; carries every problem found, not just the first
     ├── SourceError        a source cannot be opened or read
     │    └── ChangelogFencedError  another replica owns the partitions now (this one
     │                              was thrown out of its group): its state is dropped
     └── SinkError          a sink cannot write now (after its own retries); the same
          │                 output is tried again, and polling waits meanwhile
          ├── SinkUnusableError  the sink cannot be used as configured (its credentials,
          │                      permissions or destination): fatal at start, an outage
          │                      while running (nothing is dead-lettered)
          └── SinkRejectedError  the destination refused the output (a 4xx); it goes to
                                 the dead letter with the destination's message

Errors that a user can cause say what was wrong, where, and what would be accepted.
"""

from __future__ import annotations

from dataclasses import dataclass


def shortened(message: str, limit: int = 500) -> str:
    """A message for a log line: a refused 64 KiB line must not flood the log."""
    return message if len(message) <= limit else message[:limit] + f"... ({len(message)} chars)"


class StreamerError(Exception):
    """Base of every error Streamer raises on purpose."""


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a config: the key path (`sources[1].topics`) and what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(StreamerError):
    """A config cannot be used; `problems` lists each problem with its key path."""

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s) in config\n{lines}")


class SourceError(StreamerError):
    """A source cannot be opened or read; the message names the source and the cause."""


class ChangelogFencedError(SourceError):
    """A commit of partition state was refused: another member of the group owns those
    partitions now (this one stalled past its session timeout, or a replica with the
    same instance name runs). What was read since the last commit is read again there."""


class SinkError(StreamerError):
    """A sink cannot write now; retrying the same output later may succeed."""


class SinkUnusableError(SinkError):
    """The sink's credentials, permissions or destination are wrong; the message names
    the sink and the cause. Not the data's fault: no output is refused for it."""


class SinkRejectedError(SinkError):
    """The destination refused lines for good: `lines` are what it refused, and
    `reasons` (when the destination said, one per line) why each was refused."""

    def __init__(self, message: str, lines: list[str], reasons: list[str] | None = None) -> None:
        super().__init__(message)
        self.lines = lines
        self.reasons = reasons if reasons is not None else [message] * len(lines)
