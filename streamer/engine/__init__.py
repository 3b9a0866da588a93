"""The streaming engine: window, pipeline, sink writer, checkpoint, drift, retraining,
scoring, and the snapshots other threads read."""

from __future__ import annotations

from typing import TYPE_CHECKING

from streamer.core.exports import lazy_exports

if TYPE_CHECKING:
    from streamer.engine.checkpoint import CheckpointStore
    from streamer.engine.drift import Detection, DetectorFactory, DriftMonitor
    from streamer.engine.drift_response import DriftResponse
    from streamer.engine.pipeline import Pipeline
    from streamer.engine.pipeline_settings import PipelineSettings, RetrainHook, SinkObserver
    from streamer.engine.retrain import Retrainer, RetrainSettings
    from streamer.engine.sink_writer import SinkWriter
    from streamer.engine.snapshot import Snapshot, SourceStatus, WriterStatus
    from streamer.engine.window import WindowBuffer

_EXPORTS = {
    "WindowBuffer": "streamer.engine.window",
    "Pipeline": "streamer.engine.pipeline",
    "PipelineSettings": "streamer.engine.pipeline_settings",
    "Counters": "streamer.engine.reporting",
    "RetrainHook": "streamer.engine.pipeline_settings",
    "SinkObserver": "streamer.engine.pipeline_settings",
    "SinkWriter": "streamer.engine.sink_writer",
    "CheckpointStore": "streamer.engine.checkpoint",
    "DriftMonitor": "streamer.engine.drift",
    "DriftResponse": "streamer.engine.drift_response",
    "Detection": "streamer.engine.drift",
    "DetectorFactory": "streamer.engine.drift",
    "Retrainer": "streamer.engine.retrain",
    "RetrainSettings": "streamer.engine.retrain",
    "Snapshot": "streamer.engine.snapshot",
    "SourceStatus": "streamer.engine.snapshot",
    "WriterStatus": "streamer.engine.snapshot",
}
__all__ = [
    "CheckpointStore",
    "Counters",
    "Detection",
    "DetectorFactory",
    "DriftMonitor",
    "DriftResponse",
    "Pipeline",
    "PipelineSettings",
    "RetrainHook",
    "RetrainSettings",
    "Retrainer",
    "SinkObserver",
    "SinkWriter",
    "Snapshot",
    "SourceStatus",
    "WindowBuffer",
    "WriterStatus",
]
__getattr__ = lazy_exports(__name__, _EXPORTS)
