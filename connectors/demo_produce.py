"""`streamer demo-produce`: realistic synthetic price ticks and sensor readings.

Prices follow a geometric random walk whose volatility has an intraday shape (busier at
the open and the close) and switches between a calm and a volatile regime now and
then. Sensors follow a daily cycle with noise and a slow drift of their level, and go
quiet for a while now and then (dropouts). Payloads are what the daemon's default
fields read: ticks `{symbol, price, size, ts}` and readings
`{sensor_id, values: {temperature, humidity}, ts}`, `ts` in milliseconds.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)

DAY_S = 86_400


@dataclass
class Market:
    """Price walks for `symbols` symbols (see module doc)."""

    symbols: int
    seed: int = 0
    rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.price = self.rng.uniform(20, 500, self.symbols)
        self.volatile = np.zeros(self.symbols, dtype=bool)

    def ticks(self, time_ms: int, step_s: float) -> list[tuple[str, bytes]]:
        """One tick per symbol at time_ms, step_s after the previous ones."""
        day = (time_ms / 1000 % DAY_S) / DAY_S
        # Busiest around the open (09:00 UTC) and the close (16:00 UTC).
        shape = 1.0 + 1.5 * sum(math.exp(-(((day - at) / 0.02) ** 2)) for at in (0.375, 0.667))
        switch = self.rng.random(self.symbols) < step_s / (2 * DAY_S)  # every 2 days or so
        self.volatile ^= switch
        sigma = np.where(self.volatile, 0.6, 0.15) * shape * math.sqrt(step_s / DAY_S)
        self.price *= np.exp(self.rng.normal(0.0, sigma))
        sizes = np.maximum(1, self.rng.lognormal(3, 1, self.symbols)).astype(int)
        return [
            (
                f"SYM{k:03d}",
                json.dumps(
                    {
                        "symbol": f"SYM{k:03d}",
                        "price": round(float(p), 4),
                        "size": int(s),
                        "ts": time_ms,
                    }
                ).encode(),
            )
            for k, (p, s) in enumerate(zip(self.price, sizes, strict=True))
        ]


@dataclass
class Plant:
    """Temperature and humidity sensors (see module doc)."""

    sensors: int
    seed: int = 0
    rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed + 1)
        self.level = self.rng.uniform(15, 25, self.sensors)
        self.phase = self.rng.uniform(0, 2 * np.pi, self.sensors)
        self.quiet_until = np.zeros(self.sensors)

    def readings(self, time_ms: int, step_s: float) -> list[tuple[str, bytes]]:
        """A reading from each sensor that is not in a dropout at time_ms."""
        now = time_ms / 1000
        start = self.rng.random(self.sensors) < step_s / (6 * 3600)  # about every 6 hours
        self.quiet_until = np.where(
            start, now + self.rng.uniform(30, 600, self.sensors), self.quiet_until
        )
        self.level += self.rng.normal(0, 0.001 * math.sqrt(step_s), self.sensors)  # slow drift
        angle = 2 * np.pi * (now % DAY_S) / DAY_S + self.phase
        temperature = self.level + 4 * np.sin(angle) + self.rng.normal(0, 0.3, self.sensors)
        humidity = 55 - 10 * np.sin(angle) + self.rng.normal(0, 1.0, self.sensors)
        out = []
        for k in np.flatnonzero(self.quiet_until <= now).tolist():
            name = f"sensor-{k:03d}"
            values = {
                "temperature": round(float(temperature[k]), 3),
                "humidity": round(float(humidity[k]), 2),
            }
            out.append(
                (name, json.dumps({"sensor_id": name, "values": values, "ts": time_ms}).encode())
            )
        return out


Send = Callable[[str, str, bytes], None]  # (stream "ticks" | "readings", key, payload)


class Output(Protocol):
    def send(self, stream: str, key: str, payload: bytes) -> None: ...

    def close(self) -> None: ...


class KafkaOutput:
    """Ticks and readings to two Kafka topics, keyed by series."""

    def __init__(self, bootstrap: str, ticks_topic: str, readings_topic: str) -> None:
        from kafka import KafkaProducer

        self.producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
        self.topics = {"ticks": ticks_topic, "readings": readings_topic}

    def send(self, stream: str, key: str, payload: bytes) -> None:
        self.producer.send(self.topics[stream], key=key.encode(), value=payload)

    def close(self) -> None:
        self.producer.flush()
        self.producer.close()


class MqttOutput:
    """Ticks to PREFIX/ticks/<symbol>, readings to PREFIX/sensors/<sensor>, QoS 1."""

    def __init__(self, broker: str, prefix: str) -> None:
        import paho.mqtt.client as mqtt

        host, _, port = broker.rpartition(":")
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.max_queued_messages_set(0)
        self.client.connect(host, int(port))
        self.client.loop_start()
        self.prefix = prefix
        self.pending: list[Any] = []

    def send(self, stream: str, key: str, payload: bytes) -> None:
        folder = "ticks" if stream == "ticks" else "sensors"
        self.pending.append(self.client.publish(f"{self.prefix}/{folder}/{key}", payload, qos=1))
        if len(self.pending) > 10_000:
            self.pending = [p for p in self.pending if not p.is_published()]

    def close(self) -> None:
        for info in self.pending:
            info.wait_for_publish(timeout=30)
        self.client.loop_stop()
        self.client.disconnect()


def produce(
    send: Send,
    *,
    symbols: int,
    sensors: int,
    step_s: float,
    duration_s: float | None,
    seed: int = 0,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Send a tick per symbol and a reading per (live) sensor every step_s of real time,
    until duration_s has passed (None: forever); returns how many were sent."""
    market, plant = Market(symbols, seed), Plant(sensors, seed)
    started = clock()
    sent, next_at, last_report = 0, started, started
    while duration_s is None or clock() - started < duration_s:
        time_ms = int(next_at * 1000)
        for key, payload in market.ticks(time_ms, step_s):
            send("ticks", key, payload)
            sent += 1
        for key, payload in plant.readings(time_ms, step_s):
            send("readings", key, payload)
            sent += 1
        if clock() - last_report >= 10:
            last_report = clock()
            log.info("sent %d events", sent)
        next_at += step_s
        sleep(max(0.0, next_at - clock()))
    return sent
