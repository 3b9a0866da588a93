"""A pipeline's per-series state as one record per series, to move series between
replicas.

A series' record holds its rows of every stateful part (window, forecaster, outcomes,
drift feeds; `models.series_rows`), so a replica that takes a partition over carries
on with each of its series exactly where the last owner stood: same open steps, same
hidden state, same scale, same pending forecasts and residuals.

Records are packed for speed, since a checkpoint writes every changed series and a
restore reads a whole partition: the numeric rows of all series are laid side by side
in one matrix (one copy per part, no per-array work per series), and each record is
a header, the series' few non-numeric values pickled (model names, river objects) and
its row of that matrix. The header holds a digest of the layout (every leaf's path,
dtype and shape), so a record written with other settings is refused, not misread.
"""

from __future__ import annotations

import hashlib
import pickle
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models import series_rows
from models.base import Forecaster, Scorer
from models.series_rows import Rows
from streamer.engine import checkpoint
from streamer.engine.drift import DriftMonitor
from streamer.engine.window import WindowBuffer

MAGIC = b"SR2"
HEADER = struct.Struct("<3s8sI")  # magic, layout digest, length of the pickled objects
Path = tuple[str, ...]


class SeriesStates:
    """Takes, puts and drops the state of series across a pipeline's parts."""

    def __init__(
        self,
        window: WindowBuffer,
        forecaster: Forecaster,
        outcomes: Scorer | None,
        drift: DriftMonitor | None,
    ) -> None:
        self.window = window
        self.forecaster = forecaster
        self.outcomes = outcomes
        self.drift = drift
        self._layout: Layout | None = None

    def _tree(self, names: list[str], now: float) -> tuple[NDArray[np.int64], Rows]:
        slots, window_rows = self.window.take_series(names, now)
        return slots, {
            "window": window_rows,
            "forecaster": self.forecaster.take_rows(slots),
            "outcomes": series_rows.optional(self.outcomes, lambda o: o.take_rows(slots)),
            "drift": series_rows.optional(self.drift, lambda d: d.take_rows(names)),
        }

    @property
    def layout(self) -> Layout:
        if self._layout is None:
            self._layout = Layout(self._tree([], 0.0)[1])
        return self._layout

    def take(self, names: list[str], now: float) -> list[bytes]:
        """One record per live series named (now: the window's processing time)."""
        if not names:
            return []
        return self.layout.encode(self._tree(names, now)[1], len(names))

    def put(self, names: Sequence[str], records: Sequence[bytes], now: float) -> None:
        """Carry on with these series from their records (replacing any state held)."""
        chunk = max(1, self.window.max_series // 2)  # so that none evicts another
        for start in range(0, len(names), chunk):
            part = list(names[start : start + chunk])
            self._put(part, self.layout.decode(records[start : start + chunk]), now)

    def _put(self, names: list[str], tree: Rows, now: float) -> None:
        slots = self.window.put_series(names, tree["window"], now)
        self.forecaster.put_rows(slots, tree["forecaster"])
        if self.outcomes is not None:
            self.outcomes.put_rows(slots, tree["outcomes"])
        if self.drift is not None:
            self.drift.put_rows(names, tree["drift"])

    def drop(self, names: list[str]) -> None:
        """Forget these series: another replica carries on with them. Their slots'
        model state is reset by the next series that takes a slot (it starts fresh)."""
        live = [name for name in names if name in self.window.slot_of]
        self.window.drop_series(live)
        if self.drift is not None:
            self.drift.drop(names)


class Layout:
    """Where each leaf of a rows tree lies in a record (see module doc)."""

    def __init__(self, empty: Rows) -> None:
        self.numeric: list[tuple[Path, np.dtype[Any], tuple[int, ...], int, int]] = []
        self.objects: list[Path] = []
        self.absent: list[Path] = []  # parts with no rows: None, or no state per series
        self.empty: dict[Path, dict[str, Any] | None] = {}
        self.shapes: dict[Path, tuple[int, ...]] = {}  # object leaves: shape of a row
        width = 0
        for path, leaf in _leaves(empty):
            if leaf is None or isinstance(leaf, dict):
                self.absent.append(path)
                self.empty[path] = leaf
            elif leaf.dtype.kind in "biuf":
                shape = tuple(leaf.shape[1:])
                size = leaf.dtype.itemsize * int(np.prod(shape, dtype=np.int64))
                self.numeric.append((path, leaf.dtype, shape, width, width + size))
                width += size
            else:
                self.objects.append(path)
                self.shapes[path] = tuple(leaf.shape[1:])
        self.width = width
        described = [(p, d.str, s) for p, d, s, _, _ in self.numeric]
        digest = repr((described, self.objects, self.absent)).encode()
        self.digest = hashlib.sha256(digest).digest()[:8]

    def encode(self, tree: Rows, n: int) -> list[bytes]:
        matrix = np.empty((n, self.width), dtype=np.uint8)
        for path, dtype, _, start, stop in self.numeric:
            rows = np.ascontiguousarray(_get(tree, path), dtype=dtype)
            matrix[:, start:stop] = rows.reshape(n, -1).view(np.uint8)
        columns = [_get(tree, path) for path in self.objects]
        out = []
        for i in range(n):
            objects = pickle.dumps([column[i] for column in columns], protocol=5)
            head = HEADER.pack(MAGIC, self.digest, len(objects))
            out.append(head + objects + matrix[i].tobytes())
        return out

    def decode(self, records: Sequence[bytes]) -> Rows:
        n = len(records)
        matrix = np.empty((n, self.width), dtype=np.uint8)
        columns: list[list[Any]] = [[] for _ in self.objects]
        for i, record in enumerate(records):
            magic, digest, size = HEADER.unpack_from(record)
            if magic != MAGIC or digest != self.digest:
                raise ValueError(
                    "a series state record of another layout (format "
                    f"{magic!r}): it was written by a replica with other model, window, "
                    "interval or drift settings, or another version; every replica of a "
                    "group needs the same settings"
                )
            objects = checkpoint.loads(record[HEADER.size : HEADER.size + size])
            for column, value in zip(columns, objects, strict=True):
                column.append(value)
            matrix[i] = np.frombuffer(record, np.uint8, offset=HEADER.size + size)
        tree: Rows = {}
        for path, dtype, shape, start, stop in self.numeric:
            rows = np.ascontiguousarray(matrix[:, start:stop]).view(dtype).reshape(n, *shape)
            _set(tree, path, rows)
        for path, column in zip(self.objects, columns, strict=True):
            rows = series_rows.objects(column)
            _set(tree, path, np.stack(column) if self.shapes[path] and n else rows)
        for path in self.absent:
            value = self.empty[path]
            _set(tree, path, None if value is None else {})
        return tree


def _leaves(tree: Rows, prefix: Path = ()) -> list[tuple[Path, Any]]:
    """Every leaf of the tree with its path; an empty part (a model with no per-series
    state) is a leaf too, so that it is there again when decoded."""
    out: list[tuple[Path, Any]] = []
    for key in sorted(tree):
        value = tree[key]
        if isinstance(value, dict) and value:
            out += _leaves(value, (*prefix, key))
        elif isinstance(value, dict) or value is None:
            out.append(((*prefix, key), value))
        else:
            out.append(((*prefix, key), np.asarray(value)))
    return out


def _get(tree: Rows, path: Path) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def _set(tree: Rows, path: Path, value: Any) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value
