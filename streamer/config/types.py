"""Value types shared by the config sections: the strict base, host:port, ports, names."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)

from streamer.config.secrets import read_secret_files
from streamer.core.durations import format_duration, looks_like_duration, parse_duration


class Section(BaseModel):
    """A config section: unknown keys are errors, values are immutable once loaded; a
    secret key `x` may be given as `x_file` (`streamer.config.secrets`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _secret_files(cls, data: Any) -> Any:
        return read_secret_files(cls, data)


# --- shared value types -----------------------------------------------------------------

_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


def _host_port(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected host:port as a string, e.g. '127.0.0.1:9092'; got {value!r}")
    match = _HOST_PORT.match(value)
    if match is None or not 0 < int(match.group(2)) < 65536:
        raise ValueError(f"{value!r} is not host:port; expected e.g. '127.0.0.1:9092'")
    return value


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


HostPort = Annotated[str, BeforeValidator(_host_port)]
BootstrapServers = Annotated[list[HostPort], BeforeValidator(_split_commas), Field(min_length=1)]
"""A list of host:port, or one comma-separated string of them."""

Port = Annotated[int, Field(gt=0, lt=65536)]
SeriesKind = Literal["price", "sensor"]
NonEmptyStr = Annotated[str, Field(min_length=1)]


def _schedule(value: Any) -> str:
    """A duration (run every ...) or a five-field crontab; durations come back canonical."""
    if not isinstance(value, str):
        raise ValueError("expected a duration like '15m' or a crontab like '*/15 * * * *'")
    if looks_like_duration(value):
        interval = parse_duration(value)
        if interval.total_seconds() <= 0:
            raise ValueError(f"{value!r}: an interval must be more than 0")
        return format_duration(interval)
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(value)
    except ValueError as exc:
        raise ValueError(
            f"{value!r} is neither a duration ('15m') nor a crontab ({exc}); "
            "expected e.g. '15m' or '*/15 * * * *'"
        ) from None
    return value


Schedule = Annotated[str, BeforeValidator(_schedule)]
"""When to run: an interval (`15m`) or a crontab with five fields (`*/15 * * * *`)."""


# --- durations ---------------------------------------------------------------------------


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError(f"must be more than 0, e.g. '1s' (got {format_duration(value)})")
    return value


_serialize = PlainSerializer(format_duration, return_type=str)

Duration = Annotated[timedelta, BeforeValidator(parse_duration), _serialize]
"""A duration of zero or more, written like `10s` in config."""

PositiveDuration = Annotated[
    timedelta, BeforeValidator(parse_duration), AfterValidator(_positive), _serialize
]
"""A duration of more than zero."""


def default_type(tag: str) -> BeforeValidator:
    """For a tagged union: a section given without `type` (or empty) is of type `tag`, so
    `model: {horizon: 24}` means the default model with a horizon of 24."""

    def fill(value: Any) -> Any:
        if value is None:
            return {"type": tag}
        if isinstance(value, dict) and "type" not in value:
            return {"type": tag, **value}
        return value

    return BeforeValidator(fill)
