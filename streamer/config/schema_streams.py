"""What one stream is made of: how its events become steps (`window`), how they are
forecast (`model`, with `intervals`, `retrain` and `drift`), and, in a config of several
streams, one `StreamConfig` each: its sources, those sections where it sets its own, and
the sinks its output goes to. A section a stream does not set is the config's own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from streamer.config.schema_drift import Detector, PageHinkleyDetector
from streamer.config.schema_edges import FileSink, Source, source_name
from streamer.config.schema_models import Model
from streamer.config.types import Duration, NonEmptyStr, PositiveDuration, Schedule, Section
from streamer.core.durations import format_duration

if TYPE_CHECKING:
    from streamer.config.schema import StreamerConfig

# --- one stream's sections ---------------------------------------------------------------

# A bucket of the window: its step number and eight accumulators (streamer.engine.buckets).
BYTES_PER_OPEN_STEP = 9 * 8
MAX_WINDOW_BYTES = 4 * 2**30  # all series' open buckets, allocated as the daemon starts


class WindowConfig(Section):
    """How irregular events become regular per-series steps."""

    step: PositiveDuration = timedelta(seconds=1)
    aggregation: Literal["last", "mean", "sum", "ohlc"] = "last"
    allowed_lateness: Duration = timedelta(0)
    max_gap: Annotated[int, Field(ge=0)] = 5
    idle_close_after: PositiveDuration = timedelta(seconds=30)
    max_series: Annotated[int, Field(ge=1)] = 10_000

    @property
    def open_steps(self) -> int:
        """How many steps of a series may be open at once: those within lateness of its
        newest event, and the one it falls in (the window keeps an array column for each)."""
        return math.ceil(self.allowed_lateness / self.step) + 2

    @model_validator(mode="after")
    def _fits_in_memory(self) -> WindowConfig:
        """The window holds `max_series` x `open_steps` buckets in arrays allocated at
        start, so a lateness of many steps for many series (`30d` at a `1s` step) would
        not fit; a long lateness for a few series does."""
        size = self.max_series * self.open_steps * BYTES_PER_OPEN_STEP
        if size > MAX_WINDOW_BYTES:
            raise ValueError(
                f"max_series ({self.max_series}) x {self.open_steps} open steps each "
                f"(allowed_lateness {format_duration(self.allowed_lateness)} at step "
                f"{format_duration(self.step)}) need {size / 2**30:.1f} GiB of window "
                f"buckets; at most {MAX_WINDOW_BYTES // 2**30} GiB: lower max_series or "
                "allowed_lateness, or set a longer step"
            )
        return self


class IntervalsConfig(Section):
    """Prediction intervals from recent residuals, per series and horizon."""

    coverage: Annotated[float, Field(gt=0, lt=1)] = 0.9
    window: Annotated[int, Field(ge=10)] = 100


class RetrainConfig(Section):
    """Incremental retraining on a schedule, without stopping the stream."""

    enabled: bool = True
    schedule: Schedule = "15m"
    min_new_steps: Annotated[int, Field(ge=1)] = 500
    buffer_steps: Annotated[int, Field(ge=1)] = 500_000
    window: Annotated[int, Field(ge=2)] = 64
    burn_in: Annotated[int, Field(ge=0)] = 16
    threads: Annotated[int, Field(ge=1)] = 1
    epochs: Annotated[int, Field(ge=1)] = 1
    batch_size: Annotated[int, Field(ge=1)] = 256
    validation_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.2
    promote: Literal["if_better", "always"] = "if_better"
    promote_tolerance: Annotated[float, Field(ge=0)] = 0.0
    max_duration: PositiveDuration = timedelta(minutes=5)

    def fitted(self, horizon: int, lags: int) -> RetrainConfig:
        """These settings, with `window` grown where it was not set and is too short for
        the horizon and lags: the smallest power of two above lags - 1 + H and
        burn-in + H, so `model: {horizon: 24}` works as it reads."""
        needed = max(self.burn_in + horizon, lags - 1 + horizon)
        if "window" in self.model_fields_set or self.window > needed:
            return self
        return self.model_copy(update={"window": 2 ** needed.bit_length()})


class DriftConfig(Section):
    """Drift monitoring of forecast errors and/or inputs, per series. A detector with a
    `warmup` sees its signal in standard deviations of the series' own reference (see
    `streamer.engine.drift`). The retrain cooldown is event time: at most one drift retrain per
    `retrain_cooldown` and `retrain_cooldown_steps` window steps (the longer), however
    many series drift."""

    enabled: bool = True
    signal: Literal["error", "input", "both"] = "both"
    detector: Detector = PageHinkleyDetector(type="page_hinkley")
    on_drift: Literal["alert", "retrain", "reset_state"] = "alert"
    retrain_cooldown: Duration = timedelta(minutes=10)
    retrain_cooldown_steps: Annotated[int, Field(ge=0)] = 100

    def cooldown_seconds(self, step_seconds: float) -> float:
        """The retrain cooldown for a window step: the longer of its two bounds."""
        return max(
            self.retrain_cooldown.total_seconds(), self.retrain_cooldown_steps * step_seconds
        )


class StreamConfig(Section):
    """One named stream of a config with `streams`: its own sources, each section it
    sets (the config's own otherwise), and which of the config's sinks get its output
    (by name; all of them when unset). Each stream runs as a pipeline of its own."""

    sources: Annotated[list[Source], Field(min_length=1)]
    window: WindowConfig | None = None
    model: Model | None = None
    intervals: IntervalsConfig | None = None
    retrain: RetrainConfig | None = None
    drift: DriftConfig | None = None
    sinks: Annotated[list[NonEmptyStr], Field(min_length=1)] | None = None

    @field_validator("sources")
    @classmethod
    def _names_unique(cls, sources: list[Source]) -> list[Source]:
        names = [source_name(source, i) for i, source in enumerate(sources)]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"two sources are named {name!r}; give each a unique name")
        return sources


SECTIONS = ("window", "model", "intervals", "retrain", "drift")  # a stream may set its own
STREAM_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"  # in file names, metric labels and log lines


def stream_sources(streams: dict[str, Any]) -> list[Any]:
    """Every stream's sources, in order, an unnamed one named after its stream (in
    `streams` itself too, so that the stream's pipeline has the same names)."""
    out: list[Any] = []
    for name, stream in streams.items():
        sources = stream.get("sources") if isinstance(stream, dict) else None
        if not isinstance(sources, list):
            continue  # reported as the stream's own problem
        named = [
            {**s, "name": name if len(sources) == 1 else f"{name}-{i}"}
            if isinstance(s, dict) and not s.get("name")
            else s
            for i, s in enumerate(sources)
        ]
        streams[name] = {**stream, "sources": named}
        out.extend(named)
    return out


def per_stream_path(path: Path, stream: str) -> Path:
    """`state/checkpoint.db` -> `state/checkpoint.ticks.db`: a stream's own file."""
    return path.with_name(f"{path.stem}.{stream}{path.suffix}")


def shared_files(configs: Mapping[str, StreamerConfig]) -> dict[Path, list[str]]:
    """File sink paths, by the streams that write them."""
    users: dict[Path, list[str]] = {}
    for name, config in configs.items():
        for sink in config.sinks:
            if isinstance(sink, FileSink):
                users.setdefault(sink.path, []).append(name)
    return users
