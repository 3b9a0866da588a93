"""Per-series state as rows, to move series between processes.

Every stateful part keeps its per-series state in arrays indexed by slot. `take_rows`
copies the rows of some slots out (a tree of dicts whose leaves hold one row per
slot, leading axis first) and `put_rows` writes such rows into other slots of a part
with the same settings, so a series can leave one replica and carry on in another
exactly where it stood (`streamer.engine.series_state` packs them into records).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

I64 = NDArray[np.int64]
Rows = dict[str, Any]  # name -> leaf (one row per series) or a nested Rows


def take(owner: object, names: Iterable[str], slots: I64) -> Rows:
    """Copies of these slots' rows of the owner's arrays."""
    return {name: np.array(getattr(owner, name)[slots]) for name in names}


def put(owner: object, names: Iterable[str], slots: I64, rows: Mapping[str, Any]) -> None:
    """Write rows into these slots of the owner's arrays (grown to hold them first)."""
    for name in names:
        getattr(owner, name)[slots] = rows[name]


def objects(column: list[Any]) -> NDArray[np.object_]:
    """A 1-d object array of these values (numpy would nest sequences)."""
    out = np.empty(len(column), dtype=object)
    out[:] = column
    return out


def optional(part: Any, take_or_put: Callable[[Any], Any]) -> Any:
    """take_or_put(part), or None where the part is absent."""
    return None if part is None else take_or_put(part)
