"""Recent live errors of several forecasters side by side, per series and horizon.

Each series keeps the forecasts its members issued at its last H steps. When a step
arrives, every forecast made for it (issued h steps earlier, at horizon h) is scored, and
the squared error enters an exponentially weighted mean per series, member and horizon,
and one per member and horizon over all series. Each starts as a plain running mean
(weight 1/count) until the exponential weight is the larger, so the first errors after
a reset do not stand for all that follow. Scale-free comparisons (which member is
best) are what these are for, so the raw squared errors are enough.

>>> import numpy as np
>>> errors = LiveErrors(members=2, horizon=1, halflife=10)
>>> slots = np.array([0])
>>> for t in range(5):  # member 0 forecasts 1 (right), member 1 forecasts 3
...     errors.score(slots, np.array([t]), np.array([1.0]))
...     errors.record(slots, np.array([t]), np.array([[[1.0], [3.0]]]))
>>> errors.overall.round(2).tolist()
[[0.0], [4.0]]
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
NONE = np.iinfo(np.int64).min


class LiveErrors:
    """Exponentially weighted squared errors of `members` forecasters (see module doc)."""

    def __init__(self, members: int, horizon: int, halflife: float = 100.0) -> None:
        self.members = members
        self.horizon = horizon
        self.alpha = 1.0 - 0.5 ** (1.0 / halflife)
        self.pending = np.zeros((0, horizon, members, horizon))  # [slot, step % H, m, h]
        self.issued = np.zeros((0, horizon), dtype=np.int64)  # the step each ring row is of
        self.mse = np.zeros((0, members, horizon))  # per slot; NaN until scored
        self.count = np.zeros((0, members, horizon))  # forecasts scored per slot
        self.overall = np.full((members, horizon), np.nan)
        self.overall_count = np.zeros(horizon)
        self.total = np.zeros(members)  # squared errors over the whole run, all horizons
        self.total_count = 0

    def _ensure(self, slots: I64) -> None:
        if len(slots):
            needed = int(slots.max()) + 1
            self.pending = grown(self.pending, needed)
            self.issued = grown(self.issued, needed, NONE)
            self.mse = grown(self.mse, needed, np.nan)
            self.count = grown(self.count, needed)

    def take_rows(self, slots: I64) -> Rows:
        """These series' pending forecasts and errors, to carry on elsewhere."""
        self._ensure(slots)
        return series_rows.take(self, _SLOT_STATE, slots)

    def put_rows(self, slots: I64, rows: Rows) -> None:
        self._ensure(slots)
        series_rows.put(self, _SLOT_STATE, slots, rows)

    def reset(self, slots: I64) -> None:
        """Forget these series: their pending forecasts and their errors."""
        self._ensure(slots)
        self.issued[slots] = NONE
        self.mse[slots] = np.nan
        self.count[slots] = 0

    def restart_member(self, member: int) -> None:
        """Let this member's per-series errors start again as a running mean: each stands
        until the member's next score there replaces it (after a member changed)."""
        self.count[:, member] = 0

    def restart(self) -> None:
        """Forget every error and pending forecast: a fresh comparison of the forecasts
        issued from here on (after a member changed, say)."""
        self.issued[:] = NONE
        self.mse[:] = np.nan
        self.count[:] = 0
        self.overall[:] = np.nan
        self.overall_count[:] = 0

    def score(self, slots: I64, steps: I64, values: F64) -> None:
        """Score the pending forecasts for these (distinct) series' new steps: every
        horizon at once."""
        self._ensure(slots)
        if not len(slots):
            return
        h = np.arange(1, self.horizon + 1)
        issued_at = steps[:, None] - h  # [n, H]: when the forecast for this step was made
        ring = issued_at % self.horizon
        ok = self.issued[slots[:, None], ring] == issued_at  # [n, H]
        if not ok.any():
            return
        guess = self.pending[slots[:, None], ring, :, h - 1]  # [n, H, m]
        error = np.swapaxes((guess - values[:, None, None]) ** 2, 1, 2)  # [n, m, H]
        count = self.count[slots] + ok[:, None]
        self.count[slots] = count
        rate = np.where(ok[:, None], np.maximum(self.alpha, 1.0 / np.maximum(count, 1)), 0.0)
        old = np.nan_to_num(self.mse[slots])
        self.mse[slots] = np.where(ok[:, None], old + rate * (error - old), self.mse[slots])
        self.total += (error * ok[:, None]).sum(axis=(0, 2))
        self.total_count += int(ok.sum())
        n = ok.sum(axis=0)  # [H]
        scored = n > 0
        self.overall_count += n
        weight = np.maximum(
            1.0 - (1.0 - self.alpha) ** n, n / np.maximum(self.overall_count, 1)
        )  # [H]
        mean = (error * ok[:, None]).sum(axis=0) / np.maximum(n, 1)  # [m, H]
        before = np.nan_to_num(self.overall)
        self.overall = np.where(scored, before + weight * (mean - before), self.overall)

    def run_mse(self) -> F64 | None:
        """[members]: the mean squared error of every forecast this process scored (None
        before any): what the run summary reports. A checkpoint does not carry it over, so
        a restarted daemon speaks of its own run, not of the history it was trained on."""
        return self.total / self.total_count if self.total_count else None

    def record(self, slots: I64, steps: I64, yhat: F64) -> None:
        """Keep the forecasts [n, members, H] issued at these series' steps."""
        self._ensure(slots)
        at = steps % self.horizon
        self.pending[slots, at] = yhat
        self.issued[slots, at] = steps

    def state_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name).copy() for name in _STATE}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in _STATE:
            setattr(self, name, np.array(state[name]))


_SLOT_STATE = ("pending", "issued", "mse", "count")
_STATE = ("pending", "issued", "mse", "count", "overall", "overall_count")
