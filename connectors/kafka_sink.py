"""Forecasts as JSON to a Kafka topic, and rejected inputs to a dead-letter topic.

Each forecast message is keyed by its series and holds all horizons issued at one
step; `write` returns once the broker acknowledged every message (acks=all).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
from kafka import KafkaProducer
from kafka.errors import KafkaError
from kafka.net.compat import KafkaNetClient

from connectors.base import AcknowledgedSink, Output
from connectors.kafka_client import login_hint, reachable, tls_problem
from connectors.points import iso_times
from streamer.core.errors import SinkError, SinkUnusableError
from streamer.core.records import Forecasts, Rejection


def forecast_messages(output: Output) -> list[tuple[bytes, bytes]]:
    """(key, value) per issued forecast: the series, and all its horizons as JSON."""
    return [m for part in output.forecasts.parts() for m in _messages(part)]


def _messages(f: Forecasts) -> list[tuple[bytes, bytes]]:
    issued = iso_times(f.steps * f.step_ns)
    targets = np.asarray(iso_times(f.target_times_ns())).reshape(len(f), f.horizon).tolist()
    yhat = f.yhat.tolist()
    out = []
    for i, series in enumerate(f.series):
        horizons = []
        for j in range(f.horizon):
            point: dict[str, Any] = {"horizon": j + 1, "time": targets[i][j], "yhat": yhat[i][j]}
            if f.lower is not None and f.upper is not None and np.isfinite(f.lower[i, j]):
                point["lower"], point["upper"] = float(f.lower[i, j]), float(f.upper[i, j])
            if f.weights:
                point["weights"] = {m: float(w[i, j]) for m, w in f.weights.items()}
            horizons.append(point)
        value: dict[str, Any] = {
            "series": str(series),
            "model": f.model,
            "issued_at": issued[i],
            "forecasts": horizons,
        }
        if f.version is not None:
            value["version"] = f.version
        out.append((str(series).encode(), json.dumps(value).encode()))
    return out


class _Producer:
    """Made on first use: a broker that cannot be reached at start is an outage that
    each write reports (SinkError, tried again), not a crash while the daemon starts."""

    def __init__(self, topic: str, settings: dict[str, Any]) -> None:
        self.topic = topic
        self.settings = settings
        self._producer: KafkaProducer | None = None

    def send_all(
        self, messages: Sequence[tuple[bytes | None, bytes, list[tuple[str, bytes]]]]
    ) -> None:
        try:
            if self._producer is None:
                self._producer = self._connect()
            futures = [
                self._producer.send(self.topic, key=key, value=value, headers=headers)
                for key, value, headers in messages
            ]
            self._producer.flush()
            for future in futures:
                future.get(timeout=30)
        except KafkaError as exc:
            raise SinkError(
                f"Kafka topic {self.topic!r} at {self.settings['bootstrap_servers']}: {exc}"
            ) from None

    def check(self) -> None:
        """SinkUnusableError where the broker answers but refuses us: an untrusted or
        refused certificate, or (SASL) the login. A broker that does not answer is an
        outage, waited out by the writes."""
        where = f"Kafka topic {self.topic!r} at {self.settings['bootstrap_servers']}"
        refused = tls_problem(self.settings)
        if refused is not None:
            raise SinkUnusableError(f"{where}: {refused}")
        hint = login_hint(self.settings)
        if hint and self._producer is None and reachable(self.settings):
            try:
                self._producer = self._connect()
            except KafkaError as exc:
                raise SinkUnusableError(f"{where}: {exc}{hint}") from None

    def _connect(self) -> KafkaProducer:
        made: list[KafkaNetClient] = []

        def client(**configs: Any) -> KafkaNetClient:
            made.append(KafkaNetClient(**configs))
            return made[-1]

        try:
            return KafkaProducer(acks="all", linger_ms=5, kafka_client=client, **self.settings)
        except KafkaError:
            for c in made:  # a producer that failed to start leaves them open otherwise
                c.close()
            raise

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()


class KafkaSink(AcknowledgedSink):
    """Writes one JSON message per issued forecast (at least once: after a restore,
    messages since the checkpoint may be sent again)."""

    def __init__(self, topic: str, settings: dict[str, Any]) -> None:
        self._producer = _Producer(topic, settings)

    def check(self) -> None:
        self._producer.check()

    def write(self, output: Output) -> None:
        self._producer.send_all([(k, v, []) for k, v in forecast_messages(output)])

    def close(self) -> None:
        self._producer.close()


class KafkaDeadLetter:
    """Rejected inputs to a topic: the original bytes as the value, the reason in headers."""

    def __init__(self, topic: str, settings: dict[str, Any]) -> None:
        self._producer = _Producer(topic, settings)

    def check(self) -> None:
        self._producer.check()

    def write(self, rejections: list[Rejection]) -> None:
        messages = []
        for r in rejections:
            headers = [("reason", r.reason.encode()), ("detail", r.detail.encode())]
            if r.position is not None:
                headers += [
                    ("source", r.position.source.encode()),
                    ("partition", r.position.partition.encode()),
                    ("offset", str(r.position.offset).encode()),
                ]
            messages.append((None, r.raw, headers))
        self._producer.send_all(messages)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self._producer.close()
