"""Settings shared by every kafka-python client we make (security, client id)."""

from __future__ import annotations

from typing import Any

RECONNECT_BACKOFF_MAX_MS = 2_000


def client_settings(
    *,
    bootstrap_servers: list[str],
    client_id: str,
    security_protocol: str = "PLAINTEXT",
    sasl_mechanism: str | None = None,
    sasl_username: str | None = None,
    sasl_password: str | None = None,
    ssl_cafile: str | None = None,
) -> dict[str, Any]:
    """kafka-python keyword arguments for a connection (None values left out)."""
    settings: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers,
        "client_id": client_id,
        "security_protocol": security_protocol,
        "sasl_mechanism": sasl_mechanism,
        "sasl_plain_username": sasl_username,
        "sasl_plain_password": sasl_password,
        "ssl_cafile": ssl_cafile,
        # kafka-python backs off up to 30 s between reconnections; after a broker
        # outage that long is a pause in reading for nothing. The Java client's cap is 1 s.
        "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
    }
    return {k: v for k, v in settings.items() if v is not None}
