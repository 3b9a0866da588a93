"""Sources, sinks and dead letters built from their config sections, through one table
per kind (`SOURCES`, `SINKS`, `DEAD_LETTERS`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.base import DeadLetter, Sink, Source
from connectors.codecs import Decoder
from connectors.dead_letter import FileDeadLetter
from connectors.file_sink import FileSink
from connectors.influx_sink import InfluxSink
from connectors.kafka_changelog import KafkaChangelog
from connectors.kafka_client import client_settings
from connectors.kafka_lineage import KafkaLineage
from connectors.kafka_sink import KafkaDeadLetter, KafkaSink
from connectors.kafka_source import KafkaSource
from connectors.mqtt_source import MqttSource, MqttTls
from connectors.replay import ReplaySource, ReplaySourceError
from streamer.config import schema_edges as edges
from streamer.config.registry import Registry
from streamer.config.schema import GroupConfig, StreamerConfig, source_name
from streamer.core.errors import SourceError
from streamer.core.records import NS_PER_S

SourceBuilder = Callable[[Any, "SourceContext"], Source]
SinkBuilder = Callable[[Any], Sink]
DeadLetterBuilder = Callable[[Any], DeadLetter]


class SourceContext:
    """What a source is built with besides its section: its name, its decoder, and the
    daemon's instance name (Kafka group ids default to `<instance>-<name>`)."""

    def __init__(
        self, instance: str, name: str, decoder: Decoder, group: GroupConfig | None = None
    ) -> None:
        self.instance = instance
        self.name = name
        self.decoder = decoder
        self.group = group  # replicas sharing the source's partitions, when enabled


def _ns(seconds: float) -> int:
    return round(seconds * NS_PER_S)


def build_decoder(config: StreamerConfig, source: edges.Source) -> Decoder:
    """The decoder of one source's payloads, with the pipeline's input limits."""
    fields = source.fields
    allowlist = config.pipeline.series_allowlist
    return Decoder(
        kind=source.kind,
        series_field=fields.series or "series",
        value_field=fields.value,
        values_field=fields.values,
        time_field=fields.time,
        time_unit=fields.time_unit,
        payload_format=source.payload_format,
        split_fields=source.split_fields,
        max_future_ns=_ns(config.pipeline.max_future.total_seconds()),
        allowlist=frozenset(allowlist) if allowlist is not None else None,
        max_payload_bytes=config.pipeline.max_payload_bytes,
        max_series_bytes=config.pipeline.max_series_id_bytes,
        missing_time=fields.missing_time,
        duplicate_keys=fields.duplicate_keys,
    )


def kafka_settings(connection: edges.KafkaConnection) -> dict[str, object]:
    """kafka-python client settings from a section's connection keys."""
    password = connection.sasl_password
    return client_settings(
        bootstrap_servers=connection.bootstrap_servers,
        client_id=connection.client_id,
        security_protocol=connection.security_protocol,
        sasl_mechanism=connection.sasl_mechanism,
        sasl_username=connection.sasl_username,
        sasl_password=password.get_secret_value() if password else None,
        ssl_cafile=str(connection.ssl_cafile) if connection.ssl_cafile else None,
        ssl_certfile=str(connection.ssl_certfile) if connection.ssl_certfile else None,
        ssl_keyfile=str(connection.ssl_keyfile) if connection.ssl_keyfile else None,
    )


def _replay(section: edges.ReplaySource, at: SourceContext) -> Source:
    try:
        return ReplaySource(
            at.name,
            section.path,
            file_format=section.file_format,
            speed=section.speed,
            event_time=at.decoder.event_time_ns,
            columns=at.decoder.needed_fields(),
        )
    except ReplaySourceError as exc:
        raise SourceError(str(exc)) from None


def _kafka(section: edges.KafkaSource, at: SourceContext) -> Source:
    default_id = f"{at.instance}-{at.name}"
    return KafkaSource(
        at.name,
        topics=section.topics,
        group_id=section.group_id or default_id,
        auto_offset_reset=section.auto_offset_reset,
        series_from=section.series_from,
        group_instance_id=(
            (section.group_instance_id or default_id) if section.static_membership else None
        ),
        group_mode=at.group is not None,
        session_timeout_ms=None if at.group is None else at.group.session_timeout_ms,
        settings=kafka_settings(section),
    )


def _mqtt(section: edges.MqttSource, at: SourceContext) -> Source:
    password = section.password
    return MqttSource(
        at.name,
        host=section.host,
        port=section.port,
        topics=section.topics,
        qos=section.qos,
        client_id=section.client_id,
        username=section.username,
        password=password.get_secret_value() if password else None,
        tls=(
            MqttTls(
                *(
                    None if f is None else str(f)
                    for f in (section.ca_file, section.cert_file, section.key_file)
                )
            )
            if section.tls
            else None
        ),
        keepalive=section.keepalive.total_seconds(),
        series_from=section.series_from,
    )


def _influx(section: edges.InfluxSink) -> Sink:
    return InfluxSink(
        url=section.url,
        org=section.org,
        bucket=section.bucket,
        token=section.token.get_secret_value(),
        timeout=section.timeout.total_seconds(),
        gzip=section.gzip,
        max_retries=section.max_retries,
        retry_backoff=section.retry_backoff.total_seconds(),
        max_backoff=section.max_backoff.total_seconds(),
        batch_points=section.batch_points,
        requests=section.requests,
        ca_file=None if section.ca_file is None else str(section.ca_file),
        verify_ssl=section.verify_ssl,
    )


SOURCES: Registry[edges.SourceBase, SourceBuilder] = Registry("source")
SOURCES.add(edges.KafkaSource, _kafka)
SOURCES.add(edges.MqttSource, _mqtt)
SOURCES.add(edges.ReplaySource, _replay)

SINKS: Registry[Any, SinkBuilder] = Registry("sink")
SINKS.add(edges.InfluxSink, _influx)
SINKS.add(edges.FileSink, lambda s: FileSink(s.path, s.format, s.mode))
SINKS.add(edges.KafkaSink, lambda s: KafkaSink(s.topic, kafka_settings(s)))

DEAD_LETTERS: Registry[Any, DeadLetterBuilder] = Registry("dead letter")
DEAD_LETTERS.add(edges.FileDeadLetter, lambda s: FileDeadLetter(s.path))
DEAD_LETTERS.add(edges.KafkaDeadLetter, lambda s: KafkaDeadLetter(s.topic, kafka_settings(s)))


def build_sources(config: StreamerConfig) -> list[tuple[Source, Decoder]]:
    """Each configured source with the decoder of its payloads."""
    built = []
    for i, section in enumerate(config.sources):
        decoder = build_decoder(config, section)
        group = config.group if config.group.enabled else None
        at = SourceContext(config.instance, source_name(section, i), decoder, group)
        built.append((SOURCES.builder(section, f"sources[{i}].type")(section, at), decoder))
    return built


def _grouped(config: StreamerConfig, index: int) -> tuple[edges.KafkaSource, str]:
    """A grouped source's section and its group id (the schema makes sure of both)."""
    section = config.sources[index]
    assert isinstance(section, edges.KafkaSource)
    assert section.group_id is not None
    return section, section.group_id


def build_changelog(config: StreamerConfig, index: int) -> KafkaChangelog:
    """The changelog of one grouped Kafka source's partitions (group.enabled)."""
    section, group_id = _grouped(config, index)
    return KafkaChangelog(
        group_id=group_id,
        instance=config.instance,
        settings=kafka_settings(section),
        replication_factor=config.group.replication_factor,
    )


def build_lineage(config: StreamerConfig) -> KafkaLineage:
    """The model lineage of a group's replicas (group.enabled), named after the first
    source's consumer group."""
    section, group_id = _grouped(config, 0)
    return KafkaLineage(
        group_id=group_id,
        instance=config.instance,
        settings=kafka_settings(section),
        session_timeout_ms=config.group.session_timeout_ms,
        replication_factor=config.group.replication_factor,
    )


def build_sinks(config: StreamerConfig) -> list[Sink]:
    return [SINKS.builder(s, f"sinks[{i}].type")(s) for i, s in enumerate(config.sinks)]


def build_dead_letter(config: StreamerConfig) -> DeadLetter | None:
    section = config.pipeline.dead_letter
    if section is None:
        return None
    return DEAD_LETTERS.builder(section, "pipeline.dead_letter.type")(section)
