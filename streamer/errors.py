"""Streamer's own exceptions: third-party errors are translated into these at the edges.

    StreamerError           anything Streamer reports on purpose
     └── ConfigError        the config file, a ${VAR} reference or a STREAMER__ override
                            is invalid; carries every problem found, not just the first

Errors that a user can cause say what was wrong, where, and what would be accepted.
"""

from __future__ import annotations

from dataclasses import dataclass


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
