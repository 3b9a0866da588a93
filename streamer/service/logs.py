"""Logging set-up: plain text or one JSON object per line, on stderr."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from typing import Any

from streamer.core.threads import stream_of


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message (and the exception)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        stream = getattr(record, "stream", "")
        if stream:
            entry["stream"] = stream
        if record.exc_info:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a record is emitted (not when set up), so
    a replaced stderr (a test's capture, a redirect) is followed."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


class StreamTag(logging.Filter):
    """Sets `record.stream` to the stream whose thread logs it (or "")."""

    def filter(self, record: logging.LogRecord) -> bool:
        stream = stream_of(record.threadName or "")
        record.stream = stream
        record.stream_prefix = f"[{stream}] " if stream else ""
        return True


class MissingTopic(logging.Filter):
    """kafka-python logs a topic the broker does not know yet as an ERROR, also when the
    broker creates it on first use (its default): said here as what it is, at INFO."""

    MESSAGE = "Topic %s not found in cluster metadata"

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "kafka.cluster" and record.msg == self.MESSAGE:
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg = (
                "Kafka topic %s does not exist yet: the broker makes it on first use where "
                "it may (auto.create.topics.enable); else writes to it wait"
            )
        return True


SHORT = 8  # characters: a shorter secret is masked only where it stands alone


class Redact(logging.Filter):
    """Replaces each of `secrets` in a record's message and exception with `***`: the
    config's secrets stay out of the logs whatever a library puts in a message. A secret
    shorter than `SHORT` is replaced only where it stands alone (not inside a word), so
    that a test's one-letter token does not mask every letter of the log."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        alternatives = [
            re.escape(s) if len(s) >= SHORT else rf"(?<![\w-]){re.escape(s)}(?![\w-])"
            for s in sorted({s for s in secrets if s}, key=len, reverse=True)
        ]
        self.pattern = re.compile("|".join(alternatives)) if alternatives else None

    def filter(self, record: logging.LogRecord) -> bool:
        if self.pattern is None:
            return True
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        exception = record.exc_text or ""
        if self.pattern.search(message) or self.pattern.search(exception):
            record.msg, record.args = self.pattern.sub("***", message), None
            record.exc_text = self.pattern.sub("***", exception) or None
        return True


def configure(level: str = "INFO", format: str = "text", secrets: Iterable[str] = ()) -> None:
    """Send Streamer's logs to stderr at `level`, as `text` or `json`, with `secrets`
    (the config's) replaced by `***`."""
    handler = _StderrHandler()
    handler.addFilter(Redact(secrets))
    handler.addFilter(StreamTag())
    handler.addFilter(MissingTopic())
    if format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s %(levelname)-7s %(name)s: %(stream_prefix)s%(message)s", "%H:%M:%S"
            )
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Client libraries are chatty at INFO; their warnings still show, and at DEBUG all
    # they say (secrets redacted), to see why a connection fails.
    for noisy in ("kafka", "urllib3", "influxdb_client", "apscheduler"):
        chatty = root.level <= logging.DEBUG
        logging.getLogger(noisy).setLevel(
            logging.DEBUG if chatty else max(logging.WARNING, root.level)
        )
