"""The daemon's whole configuration, as pydantic models; one YAML file fills them.

Every section forbids unknown keys, so a typo is an error rather than a silently ignored
setting. Sources, sinks, models, drift detectors and dead-letter outputs are tagged unions
on `type`; the edges (sources, sinks, dead letters), the models and the drift detectors
are defined in `streamer.config.schema_edges`, `schema_models` and `schema_drift`, and
re-exported here. Secrets are `SecretStr`: masked in `repr`, in `streamer config show` and in
error messages. Reading a file (with `${VAR}` references and `STREAMER__` overrides) is
in `streamer.config.file`; this module only says what is valid.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from streamer.config.schema_drift import (
    AdwinDetector,
    Detector,
    KswinDetector,
    PageHinkleyDetector,
)
from streamer.config.schema_edges import (
    DeadLetter,
    FileDeadLetter,
    FileSink,
    InfluxSink,
    KafkaConnection,
    KafkaDeadLetter,
    KafkaSink,
    KafkaSource,
    MqttSource,
    ReplaySource,
    Sink,
    Source,
)
from streamer.config.schema_models import (
    DEFAULT_MEMBERS,
    EnsembleMember,
    EnsembleModel,
    HoltWintersModel,
    LastValueModel,
    LstmModel,
    Model,
    ModelBase,
    NetSettings,
    SeasonalNaiveModel,
    SnarimaxModel,
)
from streamer.config.types import (
    Duration,
    HostPort,
    NonEmptyStr,
    PositiveDuration,
    Schedule,
    Section,
)
from streamer.core.durations import format_duration

__all__ = [
    "DEFAULT_MEMBERS",
    "AdwinDetector",
    "CheckpointConfig",
    "DeadLetter",
    "Detector",
    "DriftConfig",
    "EnsembleMember",
    "EnsembleModel",
    "FileDeadLetter",
    "FileSink",
    "HoltWintersModel",
    "HttpConfig",
    "InfluxSink",
    "IntervalsConfig",
    "KafkaConnection",
    "KafkaDeadLetter",
    "KafkaSink",
    "KafkaSource",
    "KswinDetector",
    "LastValueModel",
    "LoggingConfig",
    "LstmModel",
    "Model",
    "ModelBase",
    "MqttSource",
    "NetSettings",
    "PageHinkleyDetector",
    "PipelineConfig",
    "ReplaySource",
    "RetrainConfig",
    "SeasonalNaiveModel",
    "Sink",
    "SnarimaxModel",
    "Source",
    "StatsConfig",
    "StreamerConfig",
    "WindowConfig",
    "sink_name",
    "source_name",
]


# --- processing --------------------------------------------------------------------------


class WindowConfig(Section):
    """How irregular events become regular per-series steps."""

    step: PositiveDuration = timedelta(seconds=1)
    aggregation: Literal["last", "mean", "sum", "ohlc"] = "last"
    allowed_lateness: Duration = timedelta(0)
    max_gap: Annotated[int, Field(ge=0)] = 5
    idle_close_after: PositiveDuration = timedelta(seconds=30)
    max_series: Annotated[int, Field(ge=1)] = 10_000


class PipelineConfig(Section):
    """Micro-batching, backpressure and what happens to bad input."""

    max_batch: Annotated[int, Field(ge=1)] = 5_000
    max_wait: PositiveDuration = timedelta(milliseconds=200)
    max_in_flight: Annotated[int, Field(ge=1)] = 4
    max_future: PositiveDuration = timedelta(hours=1)
    max_payload_bytes: Annotated[int, Field(ge=64)] = 1 << 20
    max_series_id_bytes: Annotated[int, Field(ge=1, le=32_768)] = 256
    series_allowlist: list[NonEmptyStr] | None = None
    dead_letter: DeadLetter | None = None


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


# --- operations --------------------------------------------------------------------------


class CheckpointConfig(Section):
    """Atomic snapshots of model, state and offsets, so a restart continues exactly."""

    enabled: bool = True
    path: Path = Path("state/checkpoint.db")
    every: PositiveDuration = timedelta(minutes=1)
    keep: Annotated[int, Field(ge=1)] = 3


class GroupConfig(Section):
    """Run as one of several replicas that share the Kafka source's consumer group
    (scale-out): each reads some of the input's partitions and holds the state of their
    series, kept in compacted changelog topics (`<group_id>-<topic>-changelog`) and
    restored by whichever replica reads a partition next. Needs Kafka sources only,
    each with a `group_id` shared by the replicas, input keyed by series, and a unique
    `instance` per replica (docs/scaling.md)."""

    enabled: bool = False
    # How long a replica that stopped answering keeps its partitions (a killed one, or a
    # static member restarting: it takes them back within this time with no rebalance).
    session_timeout: PositiveDuration = timedelta(seconds=45)
    replication_factor: Annotated[int, Field(ge=1)] | None = None  # None: the broker's default

    @property
    def session_timeout_ms(self) -> int:
        return round(self.session_timeout.total_seconds() * 1000)


class HttpConfig(Section):
    """The health and metrics endpoint."""

    enabled: bool = True
    bind: HostPort = "127.0.0.1:8000"
    stall_after: PositiveDuration = timedelta(minutes=1)


class StatsConfig(Section):
    """How often the daemon reports its own counters (the streamer_stats measurement)."""

    every: PositiveDuration = timedelta(seconds=10)


class LoggingConfig(Section):
    """Log level and format; rejected records are logged at most once per `rejected_every`."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"
    rejected_every: PositiveDuration = timedelta(seconds=10)

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


# --- the whole file ----------------------------------------------------------------------


class StreamerConfig(Section):
    """The daemon's config: where events come from, what is done to them, where results go."""

    instance: NonEmptyStr = "streamer"
    shutdown_timeout: PositiveDuration = timedelta(seconds=30)
    sources: Annotated[list[Source], Field(min_length=1)]
    window: WindowConfig = WindowConfig()
    pipeline: PipelineConfig = PipelineConfig()
    model: Model = LstmModel(type="lstm")
    intervals: IntervalsConfig = IntervalsConfig()
    retrain: RetrainConfig = RetrainConfig()
    drift: DriftConfig = DriftConfig()
    sinks: Annotated[list[Sink], Field(min_length=1)]
    checkpoint: CheckpointConfig = CheckpointConfig()
    group: GroupConfig = GroupConfig()
    http: HttpConfig = HttpConfig()
    stats: StatsConfig = StatsConfig()
    logging: LoggingConfig = LoggingConfig()

    @field_validator("sources")
    @classmethod
    def _names_unique(cls, sources: list[Source]) -> list[Source]:
        seen: set[str] = set()
        for i, source in enumerate(sources):
            name = source_name(source, i)
            if name in seen:
                raise ValueError(f"two sources are named {name!r}; give each a unique name")
            seen.add(name)
        return sources

    @field_validator("sinks")
    @classmethod
    def _sink_names_unique(cls, sinks: list[Sink]) -> list[Sink]:
        names = [sink_name(sink, i) for i, sink in enumerate(sinks)]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"two sinks are named {name!r}; give each a unique name")
        return sinks

    @model_validator(mode="after")
    def _a_group_reads_kafka_sources(self) -> StreamerConfig:
        if not self.group.enabled:
            return self
        mqtt = [source_name(s, i) for i, s in enumerate(self.sources) if s.type == "mqtt"]
        if mqtt:
            raise ValueError(
                f"group.enabled: MQTT source(s) {mqtt} cannot be shared out among replicas "
                "(MQTT does not route by series: a shared subscription would split a series "
                "across replicas). Run one `streamer bridge` that forwards MQTT to a Kafka "
                "topic keyed by series, and read that topic here"
            )
        others = [s.type for s in self.sources if s.type != "kafka"]
        if others:
            raise ValueError(
                "group.enabled: every source must be of type kafka (its consumer group "
                f"shares the partitions out); got {others}"
            )
        unnamed = [
            source_name(s, i)
            for i, s in enumerate(self.sources)
            if isinstance(s, KafkaSource) and s.group_id is None
        ]
        if unnamed:
            raise ValueError(
                f"group.enabled: set group_id on source(s) {unnamed}, the same in every "
                "replica (it defaults to <instance>-<name>, which differs from replica to "
                "replica)"
            )
        if "instance" not in self.model_fields_set:
            raise ValueError(
                "group.enabled: set `instance`, unique per replica (e.g. instance: "
                "${HOSTNAME}): it names the replica's group membership and transactions"
            )
        return self

    @model_validator(mode="after")
    def _windows_fit_the_horizon(self) -> StreamerConfig:
        if isinstance(self.model, NetSettings):
            horizon, lags = self.model.horizon, self.model.lag_count
            r = self.retrain.fitted(horizon, lags)
            object.__setattr__(self, "retrain", r)  # frozen, and this is its validation
            if r.window <= r.burn_in + horizon:
                raise ValueError(
                    f"retrain.window ({r.window}) must be more than retrain.burn_in "
                    f"({r.burn_in}) + model.horizon ({horizon}), so every training window "
                    f"has steps with known targets; e.g. window: {r.burn_in + 4 * horizon}"
                )
            if lags and r.window <= lags - 1 + horizon:
                raise ValueError(
                    f"retrain.window ({r.window}) must be more than model.lags ({lags}, two "
                    f"seasons unless set) - 1 + model.horizon ({horizon}), so every training "
                    f"window has steps with all their lags and known targets; e.g. window: "
                    f"{lags + 2 * horizon}, or set model.lags lower (0: none)"
                )
        return self

    def summary(self) -> str:
        """One line saying what this config runs."""
        sources = ", ".join(source_name(s, i) for i, s in enumerate(self.sources))
        sinks = ", ".join(s.type for s in self.sinks)
        return (
            f"{len(self.sources)} source(s) [{sources}] -> window "
            f"{format_duration(self.window.step)} ({self.window.aggregation}) "
            f"-> model {self.model.type} "
            f"(horizon {self.model.horizon}) -> {len(self.sinks)} sink(s) [{sinks}]"
        )


def source_name(source: Source, index: int) -> str:
    """A source's configured name, or `<type>-<index>` when it has none."""
    return source.name or f"{source.type}-{index}"


def sink_name(sink: Sink, index: int) -> str:
    """A sink's configured name, or `<type>-<index>` when it has none."""
    return sink.name or f"{sink.type}-{index}"
