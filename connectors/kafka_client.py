"""Settings shared by every kafka-python client we make (security, client id), and the
check of a TLS connection that tells why a secured broker would not take us.

kafka-python reports a broker it cannot use only as "unable to bootstrap" after its
timeout, whatever the reason. So before a client starts over SSL or SASL_SSL, one TLS
handshake of our own says whether the broker's certificate is trusted and whether it
accepts (or requires) our client certificate; what still fails after that, over
SASL_SSL, is the login (`login_hint`).
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

RECONNECT_BACKOFF_MAX_MS = 2_000
ALERT_WAIT_S = 0.5  # for a broker's alert after the handshake (TLS 1.3 sends it then)


def client_settings(
    *,
    bootstrap_servers: list[str],
    client_id: str,
    security_protocol: str = "PLAINTEXT",
    sasl_mechanism: str | None = None,
    sasl_username: str | None = None,
    sasl_password: str | None = None,
    ssl_cafile: str | None = None,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
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
        "ssl_certfile": ssl_certfile,
        "ssl_keyfile": ssl_keyfile,
        # kafka-python backs off up to 30 s between reconnections; after a broker
        # outage that long is a pause in reading for nothing. The Java client's cap is 1 s.
        "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
    }
    return {k: v for k, v in settings.items() if v is not None}


def tls_problem(settings: dict[str, Any], timeout: float = 10.0) -> str | None:
    """Why the first bootstrap server that answers refuses our TLS connection, or None
    (no TLS, it took it, or none answers: an outage, not a setting to fix)."""
    if not str(settings.get("security_protocol", "")).endswith("SSL"):
        return None
    try:
        context = ssl.create_default_context(cafile=settings.get("ssl_cafile"))
        if settings.get("ssl_certfile"):
            context.load_cert_chain(settings["ssl_certfile"], settings.get("ssl_keyfile"))
    except (OSError, ValueError) as exc:
        return f"cannot load its TLS files (ssl_cafile, ssl_certfile, ssl_keyfile): {exc}"
    for server in settings["bootstrap_servers"]:
        host, _, port = server.rpartition(":")
        try:
            raw = socket.create_connection((host, int(port)), timeout=timeout)
        except OSError:
            continue
        certificate = bool(settings.get("ssl_certfile"))
        with raw:
            try:
                tls = context.wrap_socket(raw, server_hostname=host)
            except ssl.SSLCertVerificationError as exc:
                return (
                    f"{server}: its TLS certificate is not trusted ({exc.verify_message}); "
                    "ssl_cafile should be the CA that signed it"
                )
            except ssl.SSLError as exc:
                return _refused(server, exc, certificate)
            except OSError:
                continue
            with tls:
                return _after_handshake(tls, server, certificate)
    return None


def _after_handshake(tls: ssl.SSLSocket, server: str, certificate: bool) -> str | None:
    """A broker that refuses our certificate (or its absence) says so after the
    handshake, under TLS 1.3; one that took us waits for our first request."""
    tls.settimeout(ALERT_WAIT_S)
    try:
        tls.recv(1)
    except ssl.SSLError as exc:
        return _refused(server, exc, certificate)
    except OSError:  # the wait timed out (it took us), or the connection dropped
        return None
    return None


def _refused(server: str, exc: ssl.SSLError, certificate: bool) -> str:
    if certificate:
        return f"{server}: it refused our TLS client certificate ({exc.reason})"
    return (
        f"{server}: the TLS handshake failed ({exc.reason}); if the listener requires a "
        "client certificate, set ssl_certfile and ssl_keyfile"
    )


def reachable(settings: dict[str, Any], timeout: float = 5.0) -> bool:
    """Whether any bootstrap server takes a TCP connection now."""
    for server in settings["bootstrap_servers"]:
        host, _, port = server.rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=timeout).close()
        except OSError:
            continue
        return True
    return False


def login_hint(settings: dict[str, Any]) -> str:
    """What to check when a SASL broker whose TLS took us still does not: the login."""
    if not str(settings.get("security_protocol", "")).startswith("SASL_"):
        return ""
    return (
        f" (over {settings['security_protocol']} with {settings.get('sasl_mechanism')} as "
        f"{settings.get('sasl_plain_username')!r}: if the broker answers, it refused the "
        "login: check sasl_username, sasl_password and sasl_mechanism)"
    )
