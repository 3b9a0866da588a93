"""Per-series state as rows, to move series between processes.

Every stateful part keeps its per-series state in arrays indexed by slot. `take_rows`
copies the rows of some slots out (a tree of dicts whose leaves hold one row per
slot, leading axis first) and `put_rows` writes such rows into other slots of a part
with the same settings, so a series can leave one replica and carry on in another
exactly where it stood. `split` cuts a batch of rows into one tree per series (one
changelog record each) and `stack` joins such trees back into a batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
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


def split(rows: Mapping[str, Any], n: int) -> list[Rows]:
    """One tree per series, from a tree of n rows."""
    out: list[Rows] = [{} for _ in range(n)]
    for name, leaf in rows.items():
        if isinstance(leaf, Mapping):
            for i, part in enumerate(split(leaf, n)):
                out[i][name] = part
        elif leaf is None:
            for tree in out:
                tree[name] = None
        else:
            for i in range(n):
                out[i][name] = leaf[i]
    return out


def stack(trees: Sequence[Mapping[str, Any]]) -> Rows:
    """The rows of several series as one tree (the inverse of `split`)."""
    if not trees:
        return {}
    out: Rows = {}
    for name, first in trees[0].items():
        column = [tree[name] for tree in trees]
        if isinstance(first, Mapping):
            out[name] = stack(column)
        elif first is None:
            out[name] = None
        elif isinstance(first, np.ndarray | np.generic):
            out[name] = np.stack(column)
        else:
            out[name] = objects(column)
    return out


def objects(column: list[Any]) -> NDArray[np.object_]:
    """A 1-d object array of these values (numpy would nest sequences)."""
    out = np.empty(len(column), dtype=object)
    out[:] = column
    return out


def optional(part: Any, take_or_put: Callable[[Any], Any]) -> Any:
    """take_or_put(part), or None where the part is absent."""
    return None if part is None else take_or_put(part)
