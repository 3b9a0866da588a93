"""The edges: sources to read from, sinks to write to, and payload decoding.

from connectors import KafkaSource, InfluxSink, Decoder
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from streamer.core.exports import lazy_exports

if TYPE_CHECKING:
    from connectors.base import (
        AcknowledgedSink,
        DeadLetter,
        Output,
        PayloadDecoder,
        RawRecord,
        Sink,
        SinkBase,
        Source,
        StreamSource,
    )
    from connectors.codecs import Decoder
    from connectors.dead_letter import FileDeadLetter
    from connectors.file_sink import FileSink
    from connectors.influx_sink import InfluxSink
    from connectors.kafka_sink import KafkaDeadLetter, KafkaSink
    from connectors.kafka_source import KafkaSource
    from connectors.memory import MemoryDeadLetter, MemorySink, MemorySource
    from connectors.mqtt_source import MqttSource
    from connectors.replay import ReplaySource

_EXPORTS = {
    "Source": "connectors.base",
    "Sink": "connectors.base",
    "DeadLetter": "connectors.base",
    "Output": "connectors.base",
    "RawRecord": "connectors.base",
    "PayloadDecoder": "connectors.base",
    "StreamSource": "connectors.base",
    "SinkBase": "connectors.base",
    "AcknowledgedSink": "connectors.base",
    "Decoder": "connectors.codecs",
    "MemorySource": "connectors.memory",
    "MemorySink": "connectors.memory",
    "MemoryDeadLetter": "connectors.memory",
    "ReplaySource": "connectors.replay",
    "KafkaSource": "connectors.kafka_source",
    "KafkaSink": "connectors.kafka_sink",
    "KafkaDeadLetter": "connectors.kafka_sink",
    "MqttSource": "connectors.mqtt_source",
    "InfluxSink": "connectors.influx_sink",
    "FileSink": "connectors.file_sink",
    "FileDeadLetter": "connectors.dead_letter",
}
__all__ = [
    "AcknowledgedSink",
    "DeadLetter",
    "Decoder",
    "FileDeadLetter",
    "FileSink",
    "InfluxSink",
    "KafkaDeadLetter",
    "KafkaSink",
    "KafkaSource",
    "MemoryDeadLetter",
    "MemorySink",
    "MemorySource",
    "MqttSource",
    "Output",
    "PayloadDecoder",
    "RawRecord",
    "ReplaySource",
    "Sink",
    "SinkBase",
    "Source",
    "StreamSource",
]
__getattr__ = lazy_exports(__name__, _EXPORTS)
