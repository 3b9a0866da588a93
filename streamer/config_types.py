"""Value types shared by the config sections: the strict base, host:port, ports, names."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


class Section(BaseModel):
    """A config section: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- shared value types -----------------------------------------------------------------

_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


def _host_port(value: str) -> str:
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
