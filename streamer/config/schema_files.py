"""The files a config names, and the rule that each has one use.

A file sink, a file dead letter and the checkpoint write their file; a replay source
reads its own. Two writers on one file overwrite each other, and a writer on a replay
source's input destroys the data it replays (a sink with `mode: truncate` empties it as
the daemon starts), so a config where two keys name one file is refused. Several replay
sources may read one file. Paths are compared as the daemon opens them, relative to the
working directory, so `out/f.lp` and `./out/../out/f.lp` are one file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from streamer.config.schema_edges import FileDeadLetter, FileSink, ReplaySource, Source
from streamer.config.schema_streams import per_stream_path

if TYPE_CHECKING:
    from streamer.config.schema import StreamerConfig


@dataclass(frozen=True)
class NamedFile:
    """A file as the config names it: the key, the path, and whether the daemon writes it."""

    key: str
    path: Path
    writes: bool


def named_files(config: StreamerConfig) -> list[NamedFile]:
    """Every file the config names. With `streams`, each stream has its own checkpoint
    and dead-letter file (`state/checkpoint.ticks.db`), named after the key they come from."""
    files = [
        NamedFile(f"sinks[{i}].path", sink.path, writes=True)
        for i, sink in enumerate(config.sinks)
        if isinstance(sink, FileSink)
    ]
    # Each stream: its key prefix, its name (None: the config's one stream), its sources.
    streams: list[tuple[str, str | None, list[Source]]] = (
        [(f"streams.{n}.", n, s.sources) for n, s in config.streams.items()]
        if config.streams
        else [("", None, config.sources)]
    )
    letter = config.pipeline.dead_letter
    for prefix, name, sources in streams:
        files += [
            NamedFile(f"{prefix}sources[{i}].path", source.path, writes=False)
            for i, source in enumerate(sources)
            if isinstance(source, ReplaySource)
        ]
        which = f" of stream {name}" if name else ""
        if isinstance(letter, FileDeadLetter):
            path = per_stream_path(letter.path, name) if name else letter.path
            files.append(NamedFile(f"pipeline.dead_letter.path{which}", path, writes=True))
        if config.checkpoint.enabled:
            path = config.checkpoint.path
            path = per_stream_path(path, name) if name else path
            files.append(NamedFile(f"checkpoint.path{which}", path, writes=True))
    return files


def file_clash(config: StreamerConfig) -> str | None:
    """What is wrong where two keys of the config name one file (None: nothing)."""
    seen: dict[str, NamedFile] = {}
    for file in named_files(config):
        where = os.path.normpath(os.path.abspath(file.path))
        other = seen.setdefault(where, file)
        if other is file or not (other.writes or file.writes):
            continue
        why = (
            "each would overwrite the other's output"
            if other.writes and file.writes
            else "writing it would destroy the replay source's input"
        )
        return (
            f"{other.key} ({other.path}) and {file.key} ({file.path}) name the same file: "
            f"{why}; give each its own file"
        )
    return None
