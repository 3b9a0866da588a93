"""The one config file: its schema, loading with env overrides, and building from it.

from streamer.config import load_config, build_pipeline
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from streamer.core.exports import lazy_exports

if TYPE_CHECKING:
    from streamer.config.build import build_pipeline
    from streamer.config.drift import DETECTORS
    from streamer.config.edges import DEAD_LETTERS, SINKS, SOURCES
    from streamer.config.file import load_config, parse_config
    from streamer.config.models import MODELS
    from streamer.config.schema import StreamerConfig

_EXPORTS = {
    "StreamerConfig": "streamer.config.schema",
    "load_config": "streamer.config.file",
    "parse_config": "streamer.config.file",
    "build_pipeline": "streamer.config.build",
    "MODELS": "streamer.config.models",
    "SOURCES": "streamer.config.edges",
    "SINKS": "streamer.config.edges",
    "DEAD_LETTERS": "streamer.config.edges",
    "DETECTORS": "streamer.config.drift",
}
__all__ = [
    "DEAD_LETTERS",
    "DETECTORS",
    "MODELS",
    "SINKS",
    "SOURCES",
    "StreamerConfig",
    "build_pipeline",
    "load_config",
    "parse_config",
]
__getattr__ = lazy_exports(__name__, _EXPORTS)
