"""The service around the engine: the daemon, its HTTP endpoints, logs and the CLI."""

from __future__ import annotations

from typing import TYPE_CHECKING

from streamer.core.exports import lazy_exports

if TYPE_CHECKING:
    from streamer.service.cli import main
    from streamer.service.daemon import RunResult, run
    from streamer.service.health import HttpEndpoint

_EXPORTS = {
    "run": "streamer.service.daemon",
    "RunResult": "streamer.service.daemon",
    "main": "streamer.service.cli",
    "HttpEndpoint": "streamer.service.health",
}
__all__ = ["HttpEndpoint", "RunResult", "main", "run"]
__getattr__ = lazy_exports(__name__, _EXPORTS)
