"""Records to one Kafka topic, each keyed so that its series keeps to one partition."""

from __future__ import annotations

from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from streamer.core.errors import SinkError


class KeyedTopic:
    """A producer for one topic; `flush` waits until Kafka acknowledged every record."""

    def __init__(self, topic: str, settings: dict[str, Any]) -> None:
        self.topic = topic
        try:
            self.producer = KafkaProducer(acks="all", linger_ms=20, **settings)
        except KafkaError as exc:
            raise SinkError(f"Kafka topic {topic!r}: cannot reach Kafka: {exc}") from None

    def send(self, key: str, value: bytes) -> None:
        self.producer.send(self.topic, key=key.encode(), value=value)

    def flush(self) -> None:
        try:
            self.producer.flush()
        except KafkaError as exc:
            raise SinkError(f"Kafka topic {self.topic!r}: {exc}") from None

    def close(self) -> None:
        self.producer.close()
