"""`streamer bridge`: MQTT readings to a Kafka topic keyed by series, for a group.

MQTT cannot route by key, so a group of replicas cannot share an MQTT subscription
(docs/scaling.md). One bridge process reads the config's MQTT sources, decodes each
message as the daemon would (the same fields, limits and rejections), and forwards
every value as its own Kafka record to the topic of the config's Kafka sink, keyed by
its series: `{"series": ..., "value": ..., "time": <ns>}`. A message with several
values (a reading's `values`) becomes one record per series. What cannot be decoded
goes to the config's dead letter, as in the daemon.

MQTT messages are acknowledged when received (as the daemon's MQTT source does); the
producer waits for every record to be acknowledged by Kafka (acks=all) at least once
a second, and before the bridge exits.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import orjson

from connectors.kafka_forward import KeyedTopic
from streamer.config import schema_edges as edges
from streamer.config.edges import build_dead_letter, build_sources, kafka_settings
from streamer.config.schema import StreamerConfig
from streamer.core.records import NS_PER_S
from streamer.engine.decoding import decode
from streamer.engine.reporting import Counters, Rejections

log = logging.getLogger(__name__)

FLUSH_EVERY = 1.0  # seconds between waits for Kafka's acknowledgements
REPORT_EVERY = 10.0


@dataclass
class BridgeCounters:
    messages: int = 0
    forwarded: int = 0
    rejected: int = 0


def bridge_target(config: StreamerConfig) -> edges.KafkaSink:
    """The Kafka sink the bridge forwards to; ValueError saying what is missing."""
    wrong = [s.type for s in config.sources if s.type != "mqtt"]
    if wrong:
        raise ValueError(f"streamer bridge reads MQTT sources only; this config has {wrong}")
    for sink in config.sinks:
        if isinstance(sink, edges.KafkaSink):
            return sink
    raise ValueError(
        "streamer bridge forwards to the config's Kafka sink (sinks: [{type: kafka, topic: "
        "..., bootstrap_servers: [...]}]); this config has none"
    )


def run_bridge(config: StreamerConfig, stop: threading.Event) -> BridgeCounters:
    """Forward until `stop` is set; the counters of what was done."""
    target = bridge_target(config)
    sources = build_sources(config)
    out = KeyedTopic(target.topic, kafka_settings(target))
    dead_letter = build_dead_letter(config)
    counters = BridgeCounters()
    engine_counters = Counters()
    rejections = Rejections(
        engine_counters, dead_letter, config.logging.rejected_every.total_seconds()
    )
    wait = config.pipeline.max_wait.total_seconds() / len(sources)
    flushed = reported = time.monotonic()
    log.info("bridge: MQTT -> Kafka topic %s, keyed by series", target.topic)
    try:
        while not stop.is_set():
            for source, decoder in sources:
                records = source.poll(config.pipeline.max_batch, wait)
                if not records:
                    continue
                now = time.time()
                decoded = decode([(decoder, records)], int(now * NS_PER_S))
                for series, value, time_ns in zip(
                    decoded.series, decoded.values, decoded.times, strict=True
                ):
                    out.send(
                        series, orjson.dumps({"series": series, "value": value, "time": time_ns})
                    )
                counters.messages += len(records)
                counters.forwarded += len(decoded.series)
                counters.rejected += len(decoded.rejections)
                rejections.add(decoded.rejections, now)
            if time.monotonic() - flushed >= FLUSH_EVERY:
                out.flush()
                if dead_letter is not None:
                    dead_letter.flush()
                flushed = time.monotonic()
            if time.monotonic() - reported >= REPORT_EVERY:
                reported = time.monotonic()
                log.info(
                    "bridge: %d messages, %d values forwarded, %d rejected",
                    counters.messages,
                    counters.forwarded,
                    counters.rejected,
                )
    finally:
        out.flush()
        out.close()
        for source, _ in sources:
            source.close()
        if dead_letter is not None:
            dead_letter.close()
    return counters
