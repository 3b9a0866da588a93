"""Per-series online normalisation, so one global model sees scale-free inputs.

Each slot keeps a running mean and variance of its values; values are standardised with
them, and forecasts made in that space are mapped back. Without a half-life these are
the mean and variance of everything since the slot's reset. With one, each new value
weighs at least 1 - 0.5 ** (1 / halflife), so older values fade: after a level shift
the scale recovers in a few half-lives instead of carrying the jump forever. (Until a
slot has seen about `halflife` values, the weights are equal, as without one.) A reset
starts a slot's statistics afresh. Vectorised over slots: one call updates many series.

>>> import numpy as np
>>> s = OnlineScaler()
>>> for v in (10.0, 12.0, 14.0):
...     s.update(np.array([0]), np.array([[v]]))
>>> s.mean[0].tolist(), s.std(np.array([0])).round(4).tolist()
([12.0], [[1.633]])
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from models import series_rows
from models.base import grown
from models.series_rows import Rows

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]


class OnlineScaler:
    """Running mean and variance per slot, for `width` values per step."""

    def __init__(
        self, width: int = 1, min_std: float = 1e-6, halflife: float | None = None
    ) -> None:
        self.width = width
        self.min_std = min_std
        self.halflife = halflife
        self.min_weight = 0.0 if halflife is None else 1.0 - 0.5 ** (1.0 / halflife)
        self.count = np.zeros(0, dtype=np.int64)
        self.mean = np.zeros((0, width))
        self.var = np.zeros((0, width))

    def _ensure(self, slots: I64) -> None:
        if len(slots):
            needed = int(slots.max()) + 1
            self.count = grown(self.count, needed)
            self.mean = grown(self.mean, needed)
            self.var = grown(self.var, needed)

    def take_rows(self, slots: I64) -> Rows:
        """These series' running statistics, to carry on elsewhere (`series_rows`)."""
        self._ensure(slots)
        return series_rows.take(self, ("count", "mean", "var"), slots)

    def put_rows(self, slots: I64, rows: Rows) -> None:
        self._ensure(slots)
        series_rows.put(self, ("count", "mean", "var"), slots, rows)

    def reset(self, slots: I64) -> None:
        self._ensure(slots)
        self.count[slots] = 0
        self.mean[slots] = 0.0
        self.var[slots] = 0.0

    def update(self, slots: I64, values: F64) -> None:
        """Add one step's values for distinct slots."""
        self._ensure(slots)
        count = self.count[slots] + 1
        weight = np.maximum(1.0 / count, self.min_weight)[:, None]
        delta = values - self.mean[slots]
        self.mean[slots] += weight * delta
        self.var[slots] = (1.0 - weight) * (self.var[slots] + weight * delta * delta)
        self.count[slots] = count

    def std(self, slots: I64) -> F64:
        count = self.count[slots][:, None]
        variance = np.where(count > 1, self.var[slots], 1.0)
        out: F64 = np.maximum(np.sqrt(variance), self.min_std)
        return out

    def transform(self, slots: I64, values: F64) -> F64:
        out: F64 = (values - self.mean[slots]) / self.std(slots)
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count.copy(), "mean": self.mean.copy(), "var": self.var.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.count = np.array(state["count"], dtype=np.int64)
        self.mean = np.array(state["mean"], dtype=float)
        self.var = np.array(state["var"], dtype=float)
