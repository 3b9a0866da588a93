"""In-memory sources and sinks: for tests, and for embedding the pipeline in a program."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.base import Output, RawRecord, SinkBase, StreamSource
from streamer.core.records import Position, Rejection


class MemorySource(StreamSource):
    """Serves the payloads it was given, in order; commits are recorded."""

    def __init__(self, name: str, payloads: list[bytes], series: list[str] | None = None) -> None:
        self.name = name
        self.payloads = payloads
        self.series = series
        self.next = 0
        self.committed: dict[str, int] = {}

    def poll(self, max_records: int, timeout: float) -> list[RawRecord]:
        end = min(len(self.payloads), self.next + max_records)
        out = [
            RawRecord(
                self.payloads[i],
                Position(self.name, "", i),
                self.series[i] if self.series else None,
            )
            for i in range(self.next, end)
        ]
        self.next = end
        return out

    def commit(self, positions: Mapping[str, int]) -> None:
        self.committed.update(positions)

    def seek(self, positions: Mapping[str, int]) -> None:
        self.next = positions.get("", 0)

    @property
    def exhausted(self) -> bool:
        return self.next >= len(self.payloads)

    def close(self) -> None:
        pass


class MemorySink(SinkBase):
    """Keeps every output it was given."""

    def __init__(self) -> None:
        self.outputs: list[Output] = []

    def write(self, output: Output) -> None:
        self.outputs.append(output)

    def flush(self) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {"count": len(self.outputs)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        del self.outputs[int(state["count"]) :]

    def start_fresh(self) -> None:
        self.outputs.clear()

    def close(self) -> None:
        pass


class MemoryDeadLetter:
    """Keeps every rejection it was given."""

    def __init__(self) -> None:
        self.rejections: list[Rejection] = []

    def check(self) -> None:
        """Nothing to check: it is held in memory."""

    def write(self, rejections: list[Rejection]) -> None:
        self.rejections.extend(rejections)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass
