"""Per-series online normalisation, so one global model sees scale-free inputs.

Each slot keeps a running mean and variance (Welford's update) of its values; values are
standardised with them, and forecasts made in that space are mapped back. A reset starts
a slot's statistics afresh. Vectorised over slots: one call updates many series.

>>> import numpy as np
>>> s = OnlineScaler()
>>> for v in (10.0, 12.0, 14.0):
...     s.update(np.array([0]), np.array([[v]]))
>>> s.transform(np.array([0]), np.array([[14.0]])).round(3).tolist()
[[1.0]]
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.base import grown

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]


class OnlineScaler:
    """Running mean and variance per slot, for `width` values per step."""

    def __init__(self, width: int = 1, min_std: float = 1e-6) -> None:
        self.width = width
        self.min_std = min_std
        self.count = np.zeros(0, dtype=np.int64)
        self.mean = np.zeros((0, width))
        self.m2 = np.zeros((0, width))

    def _ensure(self, slots: I64) -> None:
        if len(slots):
            needed = int(slots.max()) + 1
            self.count = grown(self.count, needed)
            self.mean = grown(self.mean, needed)
            self.m2 = grown(self.m2, needed)

    def reset(self, slots: I64) -> None:
        self._ensure(slots)
        self.count[slots] = 0
        self.mean[slots] = 0.0
        self.m2[slots] = 0.0

    def update(self, slots: I64, values: F64) -> None:
        """Add one step's values for distinct slots."""
        self._ensure(slots)
        count = self.count[slots] + 1
        delta = values - self.mean[slots]
        mean = self.mean[slots] + delta / count[:, None]
        self.m2[slots] += delta * (values - mean)
        self.mean[slots] = mean
        self.count[slots] = count

    def std(self, slots: I64) -> F64:
        count = self.count[slots][:, None]
        variance = np.where(count > 1, self.m2[slots] / np.maximum(count - 1, 1), 1.0)
        out: F64 = np.maximum(np.sqrt(variance), self.min_std)
        return out

    def transform(self, slots: I64, values: F64) -> F64:
        out: F64 = (values - self.mean[slots]) / self.std(slots)
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count.copy(), "mean": self.mean.copy(), "m2": self.m2.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.count = np.array(state["count"], dtype=np.int64)
        self.mean = np.array(state["mean"], dtype=float)
        self.m2 = np.array(state["m2"], dtype=float)
