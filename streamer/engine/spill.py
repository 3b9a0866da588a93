"""Where the window keeps the state of series it evicted, until they return."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class SpillStore(Protocol):
    """Where evicted series' window state waits until the series returns."""

    def put(self, series: str, state: dict[str, Any]) -> None: ...

    def pop(self, series: str) -> dict[str, Any] | None: ...


@dataclass
class MemorySpill:
    """A SpillStore in a dict (tests; small deployments)."""

    items: dict[str, dict[str, Any]] = field(default_factory=dict)

    def put(self, series: str, state: dict[str, Any]) -> None:
        self.items[series] = state

    def pop(self, series: str) -> dict[str, Any] | None:
        return self.items.pop(series, None)
