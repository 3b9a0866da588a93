"""Assemble the engine a config describes: window, sources, forecaster, drift, sinks."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from connectors.base import Changelog, PartitionedSource, Source
from connectors.kafka_source import KafkaSource
from models.base import Forecaster
from models.outcomes import Outcomes
from streamer.config import schema as cfg
from streamer.config.drift import build_drift
from streamer.config.edges import (
    build_changelog,
    build_dead_letter,
    build_lineage,
    build_sinks,
    build_sources,
)
from streamer.config.models import build_model, retrain_settings
from streamer.config.schema import StreamerConfig, sink_name
from streamer.core.durations import parse_duration
from streamer.core.records import NS_PER_S
from streamer.engine.checkpoint import CheckpointStore
from streamer.engine.lineage import Lineage
from streamer.engine.partitions import PartitionStates
from streamer.engine.pipeline import Pipeline
from streamer.engine.pipeline_settings import PipelineSettings, RetrainHook, SinkObserver
from streamer.engine.retrain import Retrainer
from streamer.engine.series_state import SeriesStates
from streamer.engine.window import WindowBuffer


def _ns(seconds: float) -> int:
    return round(seconds * NS_PER_S)


def build_forecaster(config: StreamerConfig) -> tuple[Forecaster, Retrainer | None]:
    """The configured forecaster, and for one with a net the retrainer that keeps it
    learning."""
    built = build_model(config.model, config.retrain)
    if built.net is None or not config.retrain.enabled:
        return built.forecaster, None
    assert isinstance(config.model, cfg.NetSettings)  # only models with a net have one
    return built.forecaster, Retrainer(built.net, retrain_settings(config.model, config.retrain))


def schedule_interval(schedule: str) -> float | None:
    """Seconds between runs for an interval schedule; None for a crontab."""
    try:
        return parse_duration(schedule).total_seconds()
    except ValueError:
        return None


class Built(NamedTuple):
    """A config's pipeline, and the retrainer inside it (its schedule not yet started)."""

    pipeline: Pipeline
    retrainer: Retrainer | None


def build_pipeline(config: StreamerConfig, stop_at_end: bool | None = None) -> Pipeline:
    """The pipeline for a config; raises ConfigError or SourceError with what is wrong."""
    return build(config, stop_at_end).pipeline


def build(
    config: StreamerConfig,
    stop_at_end: bool | None = None,
    observer: SinkObserver | None = None,
    stream: str = "",
) -> Built:
    """The pipeline for a config, with its retrainer; `observer` is told of sink writes;
    `stream`: its name in a config of several (the `stream` tag of its stats)."""
    window = config.window
    checkpoints = (
        CheckpointStore(config.checkpoint.path, config.checkpoint.keep)
        if config.checkpoint.enabled
        else None
    )
    buffer = WindowBuffer(
        step_ns=_ns(window.step.total_seconds()),
        aggregation=window.aggregation,
        allowed_lateness_ns=_ns(window.allowed_lateness.total_seconds()),
        max_gap=window.max_gap,
        idle_close_after=window.idle_close_after.total_seconds(),
        max_series=window.max_series,
        spill=checkpoints,
    )
    sources = build_sources(config)
    dead_letter = build_dead_letter(config)
    if dead_letter is not None:
        dead_letter.check()  # a refused certificate or login stops the start, naming it
    settings = _settings(config, stop_at_end, stream)
    sinks = build_sinks(config)
    for sink in sinks:
        sink.check()  # a wrong token or bucket stops the start, naming the sink
    forecaster, retrainer = build_forecaster(config)
    drift, on_drift = build_drift(config, forecaster, retrainer)
    pipeline = Pipeline(
        sources=sources,
        window=buffer,
        forecaster=forecaster,
        retrainer=_lineage(config, retrainer),
        outcomes=Outcomes(config.model.horizon, config.intervals.coverage, config.intervals.window),
        drift=drift,
        on_drift=on_drift,
        sinks=sinks,
        dead_letter=dead_letter,
        checkpoints=checkpoints,
        settings=settings,
        observer=observer,
        partitions=_partitions(config, [source for source, _ in sources], checkpoints),
    )
    return Built(pipeline, retrainer)


def _settings(config: StreamerConfig, stop_at_end: bool | None, stream: str) -> PipelineSettings:
    """The loop's settings from the config (`stop_at_end` None: when every source ends)."""
    if stop_at_end is None:
        stop_at_end = all(s.ends for s in config.sources)
    return PipelineSettings(
        max_batch=config.pipeline.max_batch,
        max_wait=config.pipeline.max_wait.total_seconds(),
        max_in_flight=config.pipeline.max_in_flight,
        # Without a checkpoint store, positions are still committed this often.
        checkpoint_every=config.checkpoint.every.total_seconds(),
        stop_at_end=stop_at_end,
        rejected_log_every=config.logging.rejected_every.total_seconds(),
        progress_every=config.stats.every.total_seconds(),
        stats_every=config.stats.every.total_seconds(),
        instance=config.instance,
        stream=stream,
        sink_names=tuple(sink_name(s, i) for i, s in enumerate(config.sinks)),
    )


def _lineage(config: StreamerConfig, retrainer: Retrainer | None) -> RetrainHook | None:
    """In a group of replicas: one model lineage (the elected replica trains)."""
    if retrainer is None or not config.group.enabled:
        return retrainer
    return Lineage(retrainer, build_lineage(config))


def _partitions(
    config: StreamerConfig, sources: list[Source], checkpoints: CheckpointStore | None
) -> Callable[[SeriesStates], PartitionStates] | None:
    """In a group of replicas: the state of the partitions this one reads."""
    if not config.group.enabled:
        return None
    grouped: list[tuple[PartitionedSource, Changelog]] = []
    for i, source in enumerate(sources):
        assert isinstance(source, KafkaSource)  # the schema allows nothing else in a group
        grouped.append((source, build_changelog(config, i)))
    return lambda series: PartitionStates(grouped, series, checkpoints)
