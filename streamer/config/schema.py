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

from pydantic import (
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

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
    sink_name,
    source_name,
)
from streamer.config.schema_files import file_clash
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
from streamer.config.schema_streams import (
    SECTIONS,
    STREAM_NAME,
    DriftConfig,
    IntervalsConfig,
    RetrainConfig,
    StreamConfig,
    WindowConfig,
    per_stream_path,
    shared_files,
    stream_sources,
)
from streamer.config.types import (
    HostPort,
    NonEmptyStr,
    PositiveDuration,
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
    streams: dict[Annotated[str, Field(pattern=STREAM_NAME)], StreamConfig] | None = None
    _streams: dict[str, StreamerConfig] = PrivateAttr(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _sources_of_streams(cls, data: Any) -> Any:
        """With `streams`, `sources` is every stream's sources (named `<stream>-<type>`
        or `<stream>-<index>` where unnamed), so that names stay unique across streams."""
        if not isinstance(data, dict) or not isinstance(data.get("streams"), dict):
            return data
        if "sources" in data:
            raise ValueError(
                "give either `sources` (one stream) or `streams` (several, each with its "
                "own sources), not both"
            )
        streams = dict(data["streams"])  # a copy: the caller's mapping stays as given
        return {**data, "streams": streams, "sources": stream_sources(streams)}

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

    @model_validator(mode="after")
    def _each_file_has_one_use(self) -> StreamerConfig:
        """Two keys naming one file (sink, dead letter, checkpoint, replay input) are
        refused, before the streams resolve, so the error names the keys as written."""
        problem = file_clash(self)
        if problem:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _streams_resolve(self) -> StreamerConfig:
        if not self.streams:
            return self
        sinks = {sink_name(sink, i): i for i, sink in enumerate(self.sinks)}
        for name, stream in self.streams.items():
            unknown = [s for s in stream.sinks or () if s not in sinks]
            if unknown:
                raise ValueError(
                    f"streams.{name}.sinks: {unknown} not among the config's sinks "
                    f"({', '.join(sinks)})"
                )
        resolved = {name: self._stream(name, s, sinks) for name, s in self.streams.items()}
        for path, users in shared_files(resolved).items():
            if len(users) > 1:
                raise ValueError(
                    f"file sink {path} would take the output of streams {users}: a file holds "
                    "one stream's output (it is truncated back to its checkpoint on a "
                    "restart); give each stream a file of its own (streams.<name>.sinks)"
                )
        object.__setattr__(self, "_streams", resolved)
        return self

    def _stream(self, name: str, stream: StreamConfig, sinks: dict[str, int]) -> StreamerConfig:
        """The single-stream config that runs stream `name`."""
        data = self.model_dump(exclude_unset=True, exclude={"streams", "sources", "sinks"})
        own = stream.model_dump(exclude_unset=True, exclude={"sinks"})
        chosen = stream.sinks or list(sinks)
        data |= {key: own[key] for key in SECTIONS if own.get(key) is not None}
        data["sources"] = own["sources"]
        data["sinks"] = [
            {**self.sinks[sinks[n]].model_dump(exclude_unset=True), "name": n} for n in chosen
        ]
        data["checkpoint"] = {
            **self.checkpoint.model_dump(exclude_unset=True),
            "path": per_stream_path(self.checkpoint.path, name),
        }
        letter = self.pipeline.dead_letter
        if isinstance(letter, FileDeadLetter):
            pipeline = data.setdefault("pipeline", {})
            pipeline["dead_letter"] = {
                **pipeline["dead_letter"],
                "path": per_stream_path(letter.path, name),
            }
        try:
            return StreamerConfig.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"] if not str(part)[0].isupper())
            message = str(first["msg"]).removeprefix("Value error, ")
            raise ValueError(f"stream {name!r}: {where + ': ' if where else ''}{message}") from None

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Without `sources` where there are `streams` (each holds its own), so that
        `streamer config show` prints a config that loads as it was given."""
        data: dict[str, Any] = handler(self)
        if self.streams:
            data.pop("sources", None)
        return data

    def stream_configs(self) -> dict[str, StreamerConfig]:
        """Each stream's config, by name; one config of one stream: itself, named ""."""
        return dict(self._streams) if self.streams else {"": self}

    def summary(self) -> str:
        """One line saying what this config runs."""
        if self.streams:
            return "; ".join(f"{n}: {c.summary()}" for n, c in self.stream_configs().items())
        sources = ", ".join(source_name(s, i) for i, s in enumerate(self.sources))
        sinks = ", ".join(s.type for s in self.sinks)
        return (
            f"{len(self.sources)} source(s) [{sources}] -> window "
            f"{format_duration(self.window.step)} ({self.window.aggregation}) "
            f"-> model {self.model.type} "
            f"(horizon {self.model.horizon}) -> {len(self.sinks)} sink(s) [{sinks}]"
        )
