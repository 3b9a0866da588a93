"""What the pipeline is built with: its settings, and what it asks of the retrainer
and tells the sinks' observer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from streamer.core.records import Event


class RetrainHook(Protocol):
    """What the loop asks at each batch boundary: swap in new weights now if there are
    any, and return the events to write (`streamer.engine.retrain.Retrainer`)."""

    def poll(self, now_ns: int) -> list[Event]: ...

    def stop(self) -> None: ...

    @property
    def outcomes(self) -> Mapping[str, int]:
        """Retrain attempts so far, by outcome (promoted, rejected, skipped, failed)."""
        ...

    @property
    def trainer(self) -> bool:
        """Whether this process trains the model (in a group, only the elected one)."""
        ...


class SinkObserver(Protocol):
    """Told of each sink write and retry, on the sink writer's thread (the metrics)."""

    def written(self, sink: str, seconds: float) -> None: ...

    def retried(self, sink: str) -> None: ...


@dataclass(frozen=True)
class PipelineSettings:
    """The loop's knobs, in seconds where they are times."""

    max_batch: int = 5_000
    max_wait: float = 0.2
    max_in_flight: int = 4
    checkpoint_every: float | None = 60.0
    stop_at_end: bool = False
    rejected_log_every: float = 10.0
    progress_every: float = 5.0
    sink_retry_wait: float = 1.0
    stats_every: float | None = None  # a streamer_stats event this often (None: never)
    instance: str = "streamer"
    stream: str = ""  # in a config of several streams, this one's (a tag of its stats)
    sink_names: tuple[str, ...] = ()  # in metrics and logs (empty: the sinks' classes)

    @property
    def stats_tags(self) -> dict[str, str]:
        """The tags of this pipeline's streamer_stats points."""
        return {"instance": self.instance, **({"stream": self.stream} if self.stream else {})}


DEFAULT_SETTINGS = PipelineSettings()
