"""Config of the edges: sources (Kafka, MQTT, replay), sinks and dead-letter outputs."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, SecretStr, model_validator

from streamer.config.types import (
    BootstrapServers,
    NonEmptyStr,
    Port,
    PositiveDuration,
    Section,
    SeriesKind,
)

# --- sources -----------------------------------------------------------------------------

_FIELD_DEFAULTS: dict[str, dict[str, str]] = {
    "price": {"series": "symbol", "value": "price", "size": "size"},
    "sensor": {"series": "sensor_id", "value": "value", "values": "values"},
}


_FORMAT_DEFAULTS: dict[str, dict[str, str]] = {
    "json": {"time_unit": "ms", "missing_time": "reject"},
    # As the InfluxDB server reads it: ns precision, the arrival time for a line without one.
    "line_protocol": {"time_unit": "ns", "missing_time": "arrival"},
}


class FieldMap(Section):
    """Where each part of an event is in a payload (or which column, in a replay file),
    and how to read it. `time_unit` and `missing_time` left out (None) take the payload
    format's defaults; a source fills them in when it is loaded."""

    series: NonEmptyStr | None = None
    value: NonEmptyStr | None = None
    values: NonEmptyStr | None = None
    size: NonEmptyStr | None = None
    time: NonEmptyStr = "ts"
    time_unit: Literal["s", "ms", "us", "ns", "iso8601"] | None = None
    missing_time: Literal["arrival", "reject"] | None = None
    duplicate_keys: Literal["reject", "last"] = "reject"


class SourceBase(Section):
    """What every source has: a name, the kind of stream and how to read its events."""

    name: NonEmptyStr | None = None
    kind: SeriesKind = "sensor"
    fields: FieldMap = FieldMap()
    split_fields: bool = True

    @model_validator(mode="before")
    @classmethod
    def _fields_default_by_kind(cls, data: Any) -> Any:
        """Fill field names the user left out with the usual ones for the stream's kind,
        and the time unit and missing-time rule with the payload format's."""
        if not isinstance(data, dict):
            return data
        kind = data.get("kind", "sensor")
        fields = data.get("fields", {})
        if kind in _FIELD_DEFAULTS and isinstance(fields, dict):
            fields = {**_FIELD_DEFAULTS[kind], **fields}
        if isinstance(fields, dict):
            by_format = _FORMAT_DEFAULTS.get(data.get("format", "json"), {})
            unset = {k: v for k, v in by_format.items() if fields.get(k) is None}
            data = {**data, "fields": {**fields, **unset}}
        return data

    @property
    def payload_format(self) -> Literal["json", "line_protocol"]:
        """How each message's payload is written (a replay file's rows read as JSON)."""
        return "json"

    @property
    def ends(self) -> bool:
        """Whether the stream ends, so the daemon stops when it has all been read."""
        return False

    @model_validator(mode="after")
    def _time_unit_fits_format(self) -> SourceBase:
        line_protocol = self.payload_format == "line_protocol"
        if line_protocol and self.fields.time_unit == "iso8601":
            raise ValueError(
                "fields.time_unit iso8601 cannot read line protocol, whose timestamps are "
                "integers; use s, ms, us or ns (default ns, as InfluxDB)"
            )
        return self


class KafkaConnection(Section):
    """How to reach a Kafka cluster; shared by the Kafka source, sink and dead letter."""

    bootstrap_servers: BootstrapServers
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: NonEmptyStr | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    client_id: NonEmptyStr = "streamer"

    @model_validator(mode="after")
    def _tls_files(self) -> KafkaConnection:
        files = [k for k in ("ssl_cafile", "ssl_certfile", "ssl_keyfile") if getattr(self, k)]
        if files and not self.security_protocol.endswith("SSL"):
            raise ValueError(
                f"{' and '.join(files)} need security_protocol SSL or SASL_SSL "
                f"(it is {self.security_protocol})"
            )
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError(
                "ssl_certfile and ssl_keyfile go together: the client certificate and its "
                "private key"
            )
        return self

    @model_validator(mode="after")
    def _sasl_complete(self) -> KafkaConnection:
        if self.security_protocol.startswith("SASL_"):
            missing = [
                key
                for key in ("sasl_mechanism", "sasl_username", "sasl_password")
                if getattr(self, key) is None
            ]
            if missing:
                raise ValueError(
                    f"security_protocol {self.security_protocol} needs {', '.join(missing)}"
                )
        return self


class KafkaSource(SourceBase, KafkaConnection):
    """Consume a consumer group's share of one or more topics."""

    type: Literal["kafka"]
    topics: Annotated[list[NonEmptyStr], Field(min_length=1)]
    group_id: NonEmptyStr | None = None
    # Static membership: a restarted daemon takes its partitions back at once, with no
    # rebalance (a dynamic member waits for the session timeout after a crash).
    static_membership: bool = True
    group_instance_id: NonEmptyStr | None = None  # default <instance>-<name>
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    format: Literal["json", "line_protocol"] = "json"
    series_from: Literal["payload", "key"] = "payload"

    @property
    def payload_format(self) -> Literal["json", "line_protocol"]:
        return self.format


_MQTT_FILTER_LEVEL = re.compile(r"^[^+#]*$")


def _mqtt_filter(value: Any) -> Any:
    """Check an MQTT topic filter: `+` fills a whole level, `#` only the last one. A value
    that is not a string is left to the string check, which says so."""
    if not isinstance(value, str):
        return value
    levels = value.split("/")
    for i, level in enumerate(levels):
        ok = level in ("+", "#") or _MQTT_FILTER_LEVEL.match(level)
        if not ok or (level == "#" and i != len(levels) - 1):
            raise ValueError(
                f"{value!r} is not an MQTT topic filter; '+' must be a whole level and '#' "
                "the last level, e.g. 'sensors/+/temperature' or 'sensors/#'"
            )
    return value


class MqttSource(SourceBase):
    """Subscribe to MQTT topic filters."""

    type: Literal["mqtt"]
    host: NonEmptyStr = "127.0.0.1"
    port: Port = 1883
    topics: Annotated[
        list[Annotated[NonEmptyStr, BeforeValidator(_mqtt_filter)]], Field(min_length=1)
    ]
    qos: Literal[0, 1, 2] = 1
    client_id: NonEmptyStr | None = None
    username: NonEmptyStr | None = None
    password: SecretStr | None = None
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    keepalive: PositiveDuration = timedelta(seconds=60)
    format: Literal["json", "line_protocol"] = "json"
    series_from: Literal["payload", "topic"] = "payload"

    @model_validator(mode="after")
    def _tls_files(self) -> MqttSource:
        files = [key for key in ("ca_file", "cert_file", "key_file") if getattr(self, key)]
        if files and not self.tls:
            raise ValueError(f"{' and '.join(files)} need tls: true")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError(
                "cert_file and key_file go together: the client certificate and its private key"
            )
        return self

    @property
    def payload_format(self) -> Literal["json", "line_protocol"]:
        return self.format


class ReplaySource(SourceBase):
    """Replay a CSV or Parquet file with a time column, as fast as possible or paced."""

    type: Literal["replay"]
    path: Path
    file_format: Literal["auto", "csv", "parquet"] = "auto"
    speed: Annotated[float, Field(gt=0)] | Literal["max"] = "max"
    stop_at_end: bool = False

    @property
    def ends(self) -> bool:
        return self.stop_at_end


Source = Annotated[KafkaSource | MqttSource | ReplaySource, Field(discriminator="type")]


# --- dead letters ------------------------------------------------------------------------


class FileDeadLetter(Section):
    """Rejected records, with their original bytes and the reason, appended to a file."""

    type: Literal["file"]
    path: Path

    def describe(self) -> str:
        """`file rejected.jsonl`: the type and where it writes, for a person."""
        return f"{self.type} {self.path}"


class KafkaDeadLetter(KafkaConnection):
    """Rejected records, with their original bytes and the reason, sent to a topic."""

    type: Literal["kafka"]
    topic: NonEmptyStr

    def describe(self) -> str:
        """`kafka streamer-rejected`: the type and where it writes, for a person."""
        return f"{self.type} {self.topic}"


DeadLetter = Annotated[FileDeadLetter | KafkaDeadLetter, Field(discriminator="type")]


# --- sinks -------------------------------------------------------------------------------

_HTTP_URL = re.compile(r"^https?://[^/\s:]+(:\d{1,5})?/?$")


def _http_url(value: Any) -> str:
    if not isinstance(value, str) or not _HTTP_URL.match(value):
        raise ValueError(f"{value!r} is not an http(s) URL; expected e.g. 'http://127.0.0.1:8086'")
    return value.rstrip("/")


class SinkBase(Section):
    """What every sink has: a name, for its metrics and log lines."""

    name: NonEmptyStr | None = None  # default <type>-<index>, e.g. influxdb-0


class InfluxSink(SinkBase):
    """Forecasts, observations and error metrics to InfluxDB 2.x."""

    type: Literal["influxdb"]
    url: Annotated[str, BeforeValidator(_http_url)]
    org: NonEmptyStr
    bucket: NonEmptyStr
    token: SecretStr
    timeout: PositiveDuration = timedelta(seconds=10)
    gzip: bool = True
    max_retries: Annotated[int, Field(ge=0)] = 5
    retry_backoff: PositiveDuration = timedelta(milliseconds=500)
    max_backoff: PositiveDuration = timedelta(seconds=30)
    batch_points: Annotated[int, Field(ge=1)] = 5_000
    requests: Annotated[int, Field(ge=1, le=64)] = 2
    ca_file: Path | None = None
    verify_ssl: bool = True

    @model_validator(mode="after")
    def _tls_needs_https(self) -> InfluxSink:
        https = self.url.startswith("https://")
        if self.ca_file is not None and not https:
            raise ValueError(f"ca_file needs an https:// url (it is {self.url})")
        if not self.verify_ssl and not https:
            raise ValueError(f"verify_ssl: false needs an https:// url (it is {self.url})")
        return self

    def describe(self) -> str:
        """`influxdb http://127.0.0.1:8086`: the type and where it writes, for a person."""
        return f"{self.type} {self.url}"


class FileSink(SinkBase):
    """Forecasts to a local file, as InfluxDB line protocol or CSV."""

    type: Literal["file"]
    path: Path
    format: Literal["line_protocol", "csv"] = "line_protocol"
    mode: Literal["append", "truncate"] = "append"

    def describe(self) -> str:
        """`file forecasts.lp`: the type and where it writes, for a person."""
        return f"{self.type} {self.path}"


class KafkaSink(KafkaConnection, SinkBase):
    """Forecasts as JSON to a Kafka topic, for downstream consumers."""

    type: Literal["kafka"]
    topic: NonEmptyStr

    def describe(self) -> str:
        """`kafka streamer-forecasts`: the type and where it writes, for a person."""
        return f"{self.type} {self.topic}"


Sink = Annotated[InfluxSink | FileSink | KafkaSink, Field(discriminator="type")]


def source_name(source: Source, index: int) -> str:
    """A source's configured name, or `<type>-<index>` when it has none."""
    return source.name or f"{source.type}-{index}"


def sink_name(sink: Sink, index: int) -> str:
    """A sink's configured name, or `<type>-<index>` when it has none."""
    return sink.name or f"{sink.type}-{index}"
