"""An online combination of forecasters, weighted by how each has done lately.

Every member forecasts every step. Their forecasts are scored as the values arrive
(`LiveErrors`: exponentially weighted squared errors per series, member and horizon),
and each new forecast is a weighted mean of the members' with

    weight_m  proportional to  exp(-sharpness * (mse_m / min_k mse_k - 1))

per series and horizon. With the default sharpness a member 10% worse than the best
gets about a third of the best one's weight, one 50% worse almost none: the best member
carries the forecast, near-equals share it (which lowers the error further, where their
errors differ). Until a series has been scored at a horizon, its members are weighted
equally there. When a member's weights change (a promoted retrain), its errors start
again as a running mean of the new weights' errors, each old one standing until the
first new one replaces it (measured: on a short synthetic run, where the net learns
fast after its first training, this cut the mean error over horizons by a fifth; on
the tuning sets it cost at most 0.4%). Each series is weighed on its own errors only,
so its forecasts never depend on other series. The weights used go out with each
forecast, so a dashboard can show who is carrying it.

>>> import numpy as np
>>> from models.baseline import LastValue, SeasonalNaive
>>> from streamer.core.records import StepBatch
>>> def one_step(t, value):
...     return StepBatch(np.array([0]), np.array(["s"], object), np.array(["sensor"], object),
...                      np.array([t]), np.array([[value]]), np.array([False]),
...                      np.array([t == 0]), 1)
>>> combo = Ensemble({"last_value": LastValue(1), "seasonal_naive": SeasonalNaive(1, 2)}, 5.0)
>>> for t in range(40):  # a period-2 zigzag: seasonal naive is right, last value is not
...     forecast = combo.step(one_step(t, float(t % 2)))
>>> forecast.yhat.round(3).tolist(), round(float(forecast.weights["seasonal_naive"][0, 0]), 3)
([[0.0]], 1.0)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.base import Forecaster, rank_groups
from models.live_errors import LiveErrors
from models.series_rows import Rows
from streamer.core.records import Forecasts, StepBatch

F64 = NDArray[np.float64]
NAME = "ensemble"


class Ensemble:
    """Members (by name) combined with weights from their recent live errors."""

    def __init__(
        self, members: dict[str, Forecaster], halflife: float = 200.0, sharpness: float = 10.0
    ) -> None:
        if len(members) < 2:
            raise ValueError(f"an ensemble needs two members or more, got {list(members)}")
        horizons = {m.horizon for m in members.values()}
        if len(horizons) != 1:
            raise ValueError(f"the members forecast different horizons: {sorted(horizons)}")
        self.members = members
        self.sharpness = sharpness
        self._horizon = horizons.pop()
        self.errors = LiveErrors(len(members), self._horizon, halflife)
        self.versions: list[int | None] = [None] * len(members)  # as last seen

    @property
    def name(self) -> str:
        return NAME

    @property
    def horizon(self) -> int:
        return self._horizon

    def weights(self, slots: NDArray[np.int64]) -> F64:
        """[n, members, H] weights for these series' next forecasts (see module doc)."""
        mse = self.errors.mse[slots]  # [n, m, H]; NaN where a series is unscored
        unscored = np.isnan(mse).any(axis=1, keepdims=True)
        best = np.nanmin(np.where(unscored, 1.0, mse), axis=1, keepdims=True)
        relative = np.where(unscored, 1.0, mse / np.maximum(best, 1e-12))
        raw = np.exp(-self.sharpness * (relative - 1.0))
        weights: F64 = raw / raw.sum(axis=1, keepdims=True)
        return weights

    def step(self, batch: StepBatch) -> Forecasts:
        outputs = [m.step(batch) for m in self.members.values()]
        for i, output in enumerate(outputs):
            if output.version != self.versions[i]:  # new weights: judge them afresh
                if self.versions[i] is not None:  # (the first seen: no errors of others)
                    self.errors.restart_member(i)
                self.versions[i] = output.version
        every = np.stack([f.yhat for f in outputs], axis=1)  # [n, m, H]
        weights = np.empty_like(every)
        for rows in rank_groups(batch.slots):
            slots, steps = batch.slots[rows], batch.steps[rows]
            self.errors.reset(slots[batch.reset[rows]])
            real = ~batch.filled[rows]
            self.errors.score(slots[real], steps[real], batch.target[rows][real])
            weights[rows] = self.weights(slots)
            self.errors.record(slots, steps, every[rows])
        finite = np.isfinite(every)
        weights = np.where(finite, weights, 0.0)
        total = weights.sum(axis=1, keepdims=True)
        weights = np.where(total > 0, weights / np.where(total > 0, total, 1.0), 0.0)
        yhat = (weights * np.where(finite, every, 0.0)).sum(axis=1)
        yhat = np.where(total[:, 0] > 0, yhat, np.nan)
        return Forecasts(
            batch.series,
            batch.steps,
            yhat,
            NAME,
            batch.step_ns,
            version=next((f.version for f in outputs if f.version is not None), None),
            weights={n: weights[:, i] for i, n in enumerate(self.members)},
        )

    def member_errors(self) -> dict[str, float]:
        mse = self.errors.run_mse()
        return {} if mse is None else dict(zip(self.members, mse.tolist(), strict=True))

    def reset(self, slots: NDArray[np.int64]) -> None:
        for member in self.members.values():
            member.reset(slots)
        self.errors.reset(slots)

    def take_rows(self, slots: NDArray[np.int64]) -> Rows:
        members = {name: m.take_rows(slots) for name, m in self.members.items()}
        return {"members": members, "errors": self.errors.take_rows(slots)}

    def put_rows(self, slots: NDArray[np.int64], rows: Rows) -> None:
        for name, member in self.members.items():
            member.put_rows(slots, rows["members"][name])
        self.errors.put_rows(slots, rows["errors"])

    def state_dict(self) -> dict[str, Any]:
        return {
            "members": {n: m.state_dict() for n, m in self.members.items()},
            "errors": self.errors.state_dict(),
            "versions": list(self.versions),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        missing = set(self.members) - set(state["members"])
        if missing:
            raise ValueError(
                f"the checkpoint holds no state for member(s) {sorted(missing)}; it was made "
                f"for members {sorted(state['members'])}"
            )
        for name, member in self.members.items():
            member.load_state_dict(state["members"][name])
        self.errors.load_state_dict(state["errors"])
        self.versions = list(state["versions"])
