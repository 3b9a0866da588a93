"""The HTTP endpoint: /healthz, /readyz and /metrics, on a thread of its own.

- /healthz: 200 while the loop has finished a micro-batch within `stall_after`, or is
  held back by a sink outage while the writer keeps trying; else 503 (a container
  orchestrator restarts a stalled daemon, not one that waits for its sink).
- /readyz: 200 when every source is reading (connected, partitions assigned), the model
  is loaded (restored or started afresh) and no sink is failing, else 503; the JSON body
  says which check failed, and why where a source or sink says (`source_problems`,
  `sink_problem`), and which partitions each source reads (`partitions`).
- /metrics: Prometheus text format (`streamer.service.metrics`).

The handler reads only the snapshots the pipeline and the sink writer publish
(`streamer.engine.snapshot`): never a live source, model or counter.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streamer.engine.snapshot import Snapshot, WriterStatus
from streamer.service.metrics import Metrics

Seen = tuple[Snapshot, WriterStatus]
# The pipeline's latest snapshots; for a config of several streams, each stream's by name.
Read = Callable[[], Seen | dict[str, Seen]]

log = logging.getLogger(__name__)


def health(
    snapshot: Snapshot, writer: WriterStatus, stall_after: float
) -> tuple[bool, dict[str, Any]]:
    now = time.monotonic()
    idle = now - snapshot.last_step_at
    # A loop held back by a sink outage is waiting, not stalled: alive while the writer
    # keeps trying (readiness, not liveness, says it cannot do its job).
    waiting = writer.failing and now - writer.last_attempt_at <= stall_after
    ok = idle <= stall_after or waiting
    status = "stalled" if not ok else "waiting on sinks" if idle > stall_after else "ok"
    return ok, {"status": status, "seconds_since_progress": round(idle, 3)}


def readiness(snapshot: Snapshot, writer: WriterStatus) -> tuple[bool, dict[str, Any]]:
    checks = {
        "sources": all(source.ready for source in snapshot.sources),
        "model": snapshot.started,
        "sinks": not writer.failing,
    }
    ok = all(checks.values())
    body: dict[str, Any] = {"status": "ready" if ok else "not ready", "checks": checks}
    if writer.failing and writer.problem:
        body["sink_problem"] = writer.problem
    partitions = {s.name: list(s.partitions) for s in snapshot.sources if s.partitions}
    if partitions:
        body["partitions"] = partitions
    problems = {source.name: source.problem for source in snapshot.sources if source.problem}
    if problems:
        body["source_problems"] = problems
    return ok, body


def _each(seen: Seen | dict[str, Seen], check: Any, fine: str) -> tuple[bool, dict[str, Any]]:
    """One pipeline's check; for several streams, all of them: ok when each is, the
    status of the first that is not, and each stream's body under `streams`."""
    if not isinstance(seen, dict):
        return check(*seen)  # type: ignore[no-any-return]
    results = {name: check(*pair) for name, pair in seen.items()}
    failed = [body["status"] for ok, body in results.values() if not ok]
    bodies = {name: body for name, (_, body) in results.items()}
    return not failed, {"status": failed[0] if failed else fine, "streams": bodies}


class HttpEndpoint:
    """Serves health, readiness and metrics at host:port from what `read` returns: the
    pipeline's and the sink writer's latest snapshots."""

    def __init__(self, bind: str, read: Read, metrics: Metrics, stall_after: float) -> None:
        host, _, port = bind.rpartition(":")
        self.read = read
        self.metrics = metrics
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                endpoint.handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # one line per scrape would drown the daemon's own log

        self.stall_after = stall_after
        self.server = ThreadingHTTPServer((host.strip("[]"), int(port)), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> HttpEndpoint:
        self._thread.start()
        log.info("health and metrics on http://%s:%d", *self.server.server_address[:2])
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(request, 200, generate_latest(self.metrics.registry), CONTENT_TYPE_LATEST)
            return
        if path in ("/healthz", "/readyz"):
            check = functools.partial(health, stall_after=self.stall_after)
            healthz = path == "/healthz"
            ok, body = _each(
                self.read(), check if healthz else readiness, "ok" if healthz else "ready"
            )
        else:
            ok, body = False, {"error": f"no {path}; try /healthz, /readyz or /metrics"}
            self._send(request, 404, json.dumps(body).encode(), "application/json")
            return
        self._send(request, 200 if ok else 503, json.dumps(body).encode(), "application/json")

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, body: bytes, kind: str) -> None:
        request.send_response(status)
        request.send_header("Content-Type", kind)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)
