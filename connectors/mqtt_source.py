"""Subscribe to MQTT topic filters (QoS 1 by default) and read messages as raw records.

MQTT v5 with a persistent session (a stable client id, clean_start off, an hour's
session expiry): while the daemon is away the broker keeps its subscriptions and queues
QoS 1 messages for it. paho reconnects by itself, backing off up to 30 s. At start, a
broker that cannot be reached, an untrusted certificate, refused credentials or a
refused subscription is a `SourceError` that says which, as soon as the broker answers.
Messages are acknowledged on receipt (MQTT has no replay to seek in, and brokers drop
what exceeds their in-flight window), then held in a bounded queue: when the pipeline is
slower than the broker, the queue fills and reading stops, so the backlog waits at the
broker.
"""

from __future__ import annotations

import logging
import queue
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from connectors.base import RawRecord, StreamSource
from streamer.core.errors import SourceError
from streamer.core.records import Position

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 3600
RECEIVE_MAXIMUM = 65_535


@dataclass(frozen=True)
class MqttTls:
    """TLS to the broker: its certificate checked against `ca_file` (the system's CAs
    when None), and a client certificate (`cert_file` with its `key_file`) if given."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


def topic_series(filters: list[str], topic: str) -> str:
    """The part of topic matched by the wildcards of the first filter it matches.

    >>> topic_series(["sensors/+/temperature"], "sensors/boiler-2/temperature")
    'boiler-2'
    >>> topic_series(["plant/#"], "plant/hall/line-3")
    'hall/line-3'
    """
    levels = topic.split("/")
    for pattern in filters:
        parts = pattern.split("/")
        matched: list[str] = []
        for i, part in enumerate(parts):
            if part == "#":
                matched += levels[i:]
                return "/".join(matched) or topic
            if i >= len(levels) or (part != "+" and part != levels[i]):
                break
            if part == "+":
                matched.append(levels[i])
        else:
            if len(parts) == len(levels):
                return "/".join(matched) or topic
    return topic


class MqttSource(StreamSource):
    """Reads messages of topic filters from one MQTT broker."""

    def __init__(
        self,
        name: str,
        *,
        host: str,
        port: int,
        topics: list[str],
        qos: int = 1,
        client_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        tls: MqttTls | None = None,
        keepalive: float = 60.0,
        series_from: str = "payload",
        queue_size: int = 100_000,
        connect_timeout: float = 15.0,
    ) -> None:
        self.name = name
        self.topics = topics
        self.qos = qos
        self.series_from = series_from
        self._queue: queue.Queue[tuple[bytes, str]] = queue.Queue(maxsize=queue_size)
        self._next = 0
        self.subscribed = threading.Event()
        self._answered = threading.Event()  # at start: subscribed, or refused (`_refused`)
        self._refused: str | None = None
        self._tls = tls
        self._context = None if tls is None else self._tls_context(tls)
        self._client = self._new_client(client_id or f"streamer-{name}", username, password)
        self._connect(host, port, keepalive, connect_timeout)

    def _new_client(
        self, client_id: str, username: str | None, password: str | None
    ) -> mqtt.Client:
        """An MQTT v5 client with this source's callbacks, reconnecting by itself."""
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        if username is not None:
            client.username_pw_set(username, password)
        if self._context is not None:
            client.tls_set_context(self._context)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        return client

    def _tls_context(self, tls: MqttTls) -> ssl.SSLContext:
        """What TLS checks (the broker's certificate and name) and presents."""
        try:
            context = ssl.create_default_context(cafile=tls.ca_file)
            if tls.cert_file is not None:
                context.load_cert_chain(tls.cert_file, tls.key_file)
        except (OSError, ValueError) as exc:
            raise SourceError(
                f"source {self.name!r}: cannot load its TLS files (ca_file {tls.ca_file}, "
                f"cert_file {tls.cert_file}, key_file {tls.key_file}): {exc}"
            ) from None
        return context

    def _check_tls(self, host: str, port: int, timeout: float, where: str) -> None:
        """One TLS handshake before the client's own, so that an untrusted certificate is
        reported as such (the client's socket would be left open by it)."""
        assert self._context is not None
        try:
            with (
                socket.create_connection((host, port), timeout=timeout) as raw,
                self._context.wrap_socket(raw, server_hostname=host),
            ):
                pass
        except ssl.SSLCertVerificationError as exc:
            raise SourceError(
                f"{where}: its TLS certificate is not trusted ({exc.verify_message}); "
                "ca_file should be the CA that signed it"
            ) from None
        except OSError as exc:
            raise SourceError(f"{where}: cannot reach it over TLS: {exc}") from None

    def _connect(self, host: str, port: int, keepalive: float, connect_timeout: float) -> None:
        """Connect with a persistent session and wait until subscribed; SourceError when the
        broker cannot be reached, refuses the connection or the subscription, or gives no
        answer within `connect_timeout`."""
        client, where = self._client, f"source {self.name!r}: MQTT broker {host}:{port}"
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = SESSION_EXPIRY_S
        # Let the broker send this many unacknowledged QoS 1/2 messages: a narrow window
        # makes a burst queue up at the broker, which drops what exceeds its queue.
        properties.ReceiveMaximum = RECEIVE_MAXIMUM
        if self._context is not None:
            self._check_tls(host, port, connect_timeout, where)
        try:
            client.connect(
                host, port, keepalive=int(keepalive), clean_start=False, properties=properties
            )
        except OSError as exc:
            self._give_up()
            raise SourceError(f"{where}: cannot reach it: {exc}") from None
        client.loop_start()
        answered = self._answered.wait(connect_timeout)
        if self._refused is not None or not answered:
            self._give_up()
            raise SourceError(
                f"{where}: {self._refused}"
                if self._refused is not None
                else f"{where}: no subscription to {self.topics} within "
                f"{connect_timeout:.0f}s (see the log for the broker's answer)"
            )

    def _give_up(self) -> None:
        """Stop reconnecting and close the socket: the start failed."""
        self._client.loop_stop()
        sock = self._client.socket()
        if sock is not None:
            sock.close()

    def _refuse(self, why: str) -> None:
        """At start, the broker said no: `_connect` raises with `why`."""
        if not self._answered.is_set():
            self._refused = why
            self._answered.set()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("source %r: MQTT broker refused the connection: %s", self.name, reason)
            self._refuse(f"it refused the connection: {reason} (check username and password)")
            return
        options = SubscribeOptions(qos=self.qos)
        client.subscribe([(topic, options) for topic in self.topics])

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, reasons: Any, _p: Any) -> None:
        failed = {
            topic: str(r) for topic, r in zip(self.topics, reasons, strict=False) if r.is_failure
        }
        if failed:
            log.error("source %r: subscription refused: %s", self.name, failed)
            self._refuse(f"it refused the subscription: {failed} (check the broker's ACL)")
            return
        log.info("source %r: subscribed to %s", self.name, self.topics)
        self.subscribed.set()
        self._answered.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.subscribed.clear()  # not reading: idle time stops counting until resubscribed
        if self._tls is not None and self._tls.cert_file is None:
            hint = " (does the listener require a client certificate? set cert_file and key_file)"
        else:
            hint = ""
        self._refuse(f"it closed the connection before the subscription: {reason}{hint}")
        if reason.is_failure:
            log.warning(
                "source %r: disconnected from the MQTT broker (%s); reconnecting", self.name, reason
            )

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self._queue.put((bytes(message.payload), message.topic))  # blocks when full

    def poll(self, max_records: int, timeout: float) -> list[RawRecord]:
        out: list[RawRecord] = []
        deadline = time.monotonic() + timeout
        while len(out) < max_records:
            try:
                if out:
                    payload, topic = self._queue.get_nowait()
                else:
                    payload, topic = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            series = topic_series(self.topics, topic) if self.series_from == "topic" else None
            out.append(RawRecord(payload, Position(self.name, "", self._next), series))
            self._next += 1
        return out

    def commit(self, positions: Mapping[str, int]) -> None:
        """Nothing to do: messages were acknowledged on receipt."""

    def seek(self, positions: Mapping[str, int]) -> None:
        """MQTT cannot seek; the count of messages read continues from the checkpoint."""
        self._next = positions.get("", 0)

    @property
    def ready(self) -> bool:
        """Connected and subscribed."""
        return self.subscribed.is_set()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
