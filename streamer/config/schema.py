"""The daemon's whole configuration, as pydantic models; one YAML file fills them.

Every section forbids unknown keys, so a typo is an error rather than a silently ignored
setting. Sources, sinks, models, drift detectors and dead-letter outputs are tagged unions
on `type`; the edges (sources, sinks, dead letters) are defined in `streamer.config.schema_edges`
and re-exported here. Secrets are `SecretStr`: masked in `repr`, in `streamer config show` and in
error messages. Reading a file (with `${VAR}` references and `STREAMER__` overrides) is
in `streamer.config.file`; this module only says what is valid.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

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
    "AdwinDetector",
    "CheckpointConfig",
    "DeadLetter",
    "DriftConfig",
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


class ModelBase(Section):
    """What every forecaster has: how many steps ahead it forecasts."""

    horizon: Annotated[int, Field(ge=1, le=1000)] = 12


class IntervalsConfig(Section):
    """Prediction intervals from recent residuals, per series and horizon."""

    coverage: Annotated[float, Field(gt=0, lt=1)] = 0.9
    window: Annotated[int, Field(ge=10)] = 100


class NetSettings(Section):
    """The recurrent net: one LSTM (or GRU) shared by all series, each series with its own
    state, plus a linear highway on the last `lags` scaled values."""

    cell: Literal["lstm", "gru"] = "lstm"
    hidden_size: Annotated[int, Field(ge=1)] = 32
    num_layers: Annotated[int, Field(ge=1)] = 1
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    learning_rate: Annotated[float, Field(gt=0)] = 1e-3
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    seed: int = 0
    calendar: bool = False
    scale_halflife: Annotated[int, Field(ge=1)] | None = None
    price_inputs: Literal["levels", "returns"] = "levels"
    season_length: Annotated[int, Field(ge=1)] = 24
    lags: Annotated[int, Field(ge=0)] | None = None
    lag_memory: Annotated[float, Field(gt=0)] = 5000.0

    @property
    def lag_count(self) -> int:
        """Lags the linear highway reads: `lags`, or two seasons when unset."""
        return 2 * self.season_length if self.lags is None else self.lags


class LstmModel(ModelBase, NetSettings):
    """The recurrent net alone. Until its weights have been trained on `min_train_steps`
    (and, with `serve_if: better`, while its recent live error is not below the
    baseline's), a baseline forecasts instead."""

    type: Literal["lstm"]
    min_train_steps: Annotated[int, Field(ge=0)] = 10_000
    serve_if: Literal["better", "trained"] = "better"
    baseline: Literal["seasonal_naive", "last_value", "holtwinters", "snarimax"] = "seasonal_naive"


EnsembleMember = Literal["lstm", "last_value", "seasonal_naive"]
DEFAULT_MEMBERS: tuple[EnsembleMember, ...] = ("lstm", "last_value", "seasonal_naive")


class EnsembleModel(ModelBase, NetSettings):
    """An online combination of `members`, weighted per series and horizon by their
    recent live squared errors: the best member carries the forecast, near-equals share
    it. The net's settings are those of its `lstm` member."""

    type: Literal["ensemble"]
    members: Annotated[list[EnsembleMember], Field(min_length=2)] = Field(
        default_factory=lambda: list(DEFAULT_MEMBERS)
    )
    halflife: Annotated[float, Field(gt=0)] = 200.0
    sharpness: Annotated[float, Field(ge=0)] = 10.0

    @field_validator("members")
    @classmethod
    def _members_unique(cls, members: list[str]) -> list[str]:
        if len(set(members)) != len(members):
            raise ValueError(f"each member may be named once; got {members}")
        return members


class LastValueModel(ModelBase):
    """Baseline: every horizon forecasts the last observed value."""

    type: Literal["last_value"]


class SeasonalNaiveModel(ModelBase):
    """Baseline: each horizon forecasts the value one season earlier."""

    type: Literal["seasonal_naive"]
    season_length: Annotated[int, Field(ge=1)] = 24


class SnarimaxModel(ModelBase):
    """river's SNARIMAX(2,1,1)(0,1,1)[season_length], learnt online per series. One
    Python model per series: for tens or hundreds of series, not for 100k."""

    type: Literal["snarimax"]
    season_length: Annotated[int, Field(ge=1)] = 24


class HoltWintersModel(ModelBase):
    """river's additive Holt-Winters (level and season, no trend), per series. One Python
    model per series: for tens or hundreds of series, not for 100k."""

    type: Literal["holtwinters"]
    season_length: Annotated[int, Field(ge=1)] = 24


Model = Annotated[
    LstmModel
    | EnsembleModel
    | LastValueModel
    | SeasonalNaiveModel
    | SnarimaxModel
    | HoltWintersModel,
    Field(discriminator="type"),
]


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


class AdwinDetector(Section):
    """river's ADWIN: adaptive window, for changes in the mean. It compares sub-windows
    of the signal by their own spread, so by default (`warmup` 0) it sees the raw
    signal; with `warmup` N it sees it standardised by a reference learnt over N values
    per series (as `page_hinkley` does). It assumes independent values: on
    autocorrelated ones (most real series) it fires often."""

    type: Literal["adwin"]
    delta: Annotated[float, Field(gt=0, lt=1)] = 0.002
    warmup: Annotated[int, Field(ge=0)] = 0


class PageHinkleyDetector(Section):
    """river's Page-Hinkley test (a two-sided CUSUM), for sustained changes in the mean;
    the default. It sees each value in standard deviations of the series' reference
    (learnt over `warmup` values per series, and again after each detection), so
    `delta` (the allowance: moves smaller than this are ignored) and `threshold` (how
    far the summed excess over the allowance must go) are in those units. The defaults
    give at most 1 alarm per 10,000 steps on stationary noise, AR(1) 0.8 included, and
    find a 3-sd level shift in about 20 steps; `alpha` 1 sums without fading (a fading
    sum wanders on long runs and fires by itself)."""

    type: Literal["page_hinkley"]
    threshold: Annotated[float, Field(gt=0)] = 40.0
    min_instances: Annotated[int, Field(ge=1)] = 30
    delta: Annotated[float, Field(ge=0)] = 1.0
    alpha: Annotated[float, Field(gt=0, le=1)] = 1.0
    warmup: Annotated[int, Field(ge=0)] = 200


class KswinDetector(Section):
    """river's KSWIN: Kolmogorov-Smirnov test over a sliding window, for changed shapes.
    Rank-based, so by default (`warmup` 0) it sees the raw signal; `warmup` as for
    `adwin`. It assumes independent values: on autocorrelated ones it fires often."""

    type: Literal["kswin"]
    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.005
    window_size: Annotated[int, Field(ge=2)] = 100
    stat_size: Annotated[int, Field(ge=1)] = 30
    seed: int = 0
    warmup: Annotated[int, Field(ge=0)] = 0

    @model_validator(mode="after")
    def _stat_fits_window(self) -> KswinDetector:
        if self.stat_size >= self.window_size:
            raise ValueError(
                f"stat_size ({self.stat_size}) must be less than window_size ({self.window_size})"
            )
        return self


Detector = Annotated[
    AdwinDetector | PageHinkleyDetector | KswinDetector, Field(discriminator="type")
]


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

    @model_validator(mode="after")
    def _windows_fit_the_horizon(self) -> StreamerConfig:
        if isinstance(self.model, NetSettings):
            r, horizon = self.retrain, self.model.horizon
            if r.window <= r.burn_in + horizon:
                raise ValueError(
                    f"retrain.window ({r.window}) must be more than retrain.burn_in "
                    f"({r.burn_in}) + model.horizon ({horizon}), so every training window "
                    f"has steps with known targets; e.g. window: {r.burn_in + 4 * horizon}"
                )
            lags = self.model.lag_count
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
