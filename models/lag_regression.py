"""A linear map from each series' last `lags` steps to its next `horizon` steps, learnt
online by least squares and shared by all series (the recurrent model's "highway").

An LSTM learns a season's shape slowly and forgets it quickly; a linear read of the
last season learns it from a few hundred steps and holds it (the autoregressive
component of LSTNet, Lai et al. 2018). At every step, the series' last `lags` values
are standardised with the series' scaler as it stands now (so the map is scale-free and
one map serves every series), and the forecast is the change from the current scaled
value to each horizon. The map is refitted from running normal equations, one per
horizon, fed leak-free: a step's features meet their target only when the target's
step has arrived, h steps later. Old pairs fade with a half-life of `memory` steps,
so the map follows a changing stream. Series read as log returns are left to the recurrent net.
Lags and changes are clipped at `LIMIT` sds: a jump of more than that is a break that
no lag foretells, and one such pair, learnt at full size, would throw every later
forecast far off its series.

>>> import numpy as np
>>> ar = LagRegression(horizon=1, lags=2)
>>> slots = np.array([0])
>>> for t in range(200):  # a series that alternates: +1, -1, +1, ...
...     value = np.array([(-1.0) ** t])
...     ar.observe(slots, value, np.zeros(1), np.ones(1), np.zeros(1, bool))
>>> ar.refit()
>>> ar.forecast(slots, np.zeros(1, bool)).round(2).tolist()  # last -1: the next is +1, 2 up
[[1.99]]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from models import series_rows
from models.base import grown
from models.series_rows import Rows

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]
Mask = NDArray[np.bool_]

FED, MEAN, STD = 0, 1, 2
LIMIT = 10.0  # sds: the largest lag or change (standardised) the map reads or learns


def lag_features(history: F64, count: I64, lags: int) -> F64:
    """[n, lags + 1]: the last `lags` fed values of each history [n, steps, 3] (newest
    last), standardised with the newest step's mean and std, then a constant 1. Lags
    before the series' first step (fewer than `lags` since its reset: `count`) repeat the
    oldest one there is."""
    steps = history.shape[1]
    take = np.arange(steps - 1, steps - 1 - lags, -1)  # newest first
    first = np.maximum(steps - np.minimum(count, steps), 0)[:, None]
    values = history[np.arange(len(history))[:, None], np.maximum(take[None, :], first), FED]
    mean, std = history[:, -1, MEAN][:, None], history[:, -1, STD][:, None]
    standard = np.clip((values - mean) / std, -LIMIT, LIMIT)
    return np.concatenate([standard, np.ones((len(history), 1))], axis=1)


class LagRegression:
    """Online least squares from standardised lags to scaled changes (see module doc)."""

    def __init__(
        self,
        horizon: int,
        lags: int,
        memory: float = 5000.0,
        ridge: float = 1.0,
        refit_every: int = 256,
        max_pairs: int = 1024,
    ) -> None:
        if lags < 1:
            raise ValueError(f"lags must be at least 1, got {lags}")
        self.horizon = horizon
        self.lags = lags
        self.memory = memory
        self.ridge = ridge
        self.refit_every = refit_every  # new pairs (of horizon 1) between refits
        self.max_pairs = max_pairs  # per horizon and step: a subset of many series is enough
        self.since_refit = 0
        self.turn = 0  # which subset of a large step feeds the equations
        width = lags + 1
        self.span = lags + horizon  # steps each series keeps: lags for the oldest issue
        self.ring = np.zeros((0, self.span, 3))  # per slot: (fed, mean, std), circular
        self.head = np.zeros(0, dtype=np.int64)  # per slot: where its next step goes (oldest)
        self.count = np.zeros(0, dtype=np.int64)  # steps since the slot's reset
        self.gram = np.zeros((horizon, width, width))  # sum of x x^T per horizon
        self.moment = np.zeros((horizon, width))  # sum of x * target per horizon
        self.pairs = np.zeros(horizon)  # (faded) pairs seen per horizon
        self.weights = np.zeros((width, horizon))  # untrained: no change

    def _ensure(self, slots: I64) -> None:
        if len(slots):
            needed = int(slots.max()) + 1
            self.ring = grown(self.ring, needed)
            self.head = grown(self.head, needed)
            self.count = grown(self.count, needed)

    def _history(self, slots: I64, steps: int) -> F64:
        """[n, steps, 3]: the last `steps` (fed, mean, std) of each slot, oldest first."""
        at = (self.head[slots, None] + np.arange(self.span - steps, self.span)) % self.span
        history: F64 = self.ring[slots[:, None], at]
        return history

    def take_rows(self, slots: I64) -> Rows:
        """These series' recent lags (the fitted weights are shared, not per series)."""
        self._ensure(slots)
        return series_rows.take(self, ("ring", "head", "count"), slots)

    def put_rows(self, slots: I64, rows: Rows) -> None:
        self._ensure(slots)
        series_rows.put(self, ("ring", "head", "count"), slots, rows)

    def reset(self, slots: I64) -> None:
        self._ensure(slots)
        self.count[slots] = 0

    def observe(
        self, slots: I64, fed: F64, mean: F64, std: F64, reset: Mask, returns: Mask | None = None
    ) -> None:
        """One step of distinct series: the fed value and the scaler's mean and std after
        it. Pairs whose target this step is are added to the normal equations (of level
        series only; at most `max_pairs` per horizon, taken in turn from a large step)."""
        if len(slots) == 0:
            return
        self._ensure(slots)
        self.count[slots[reset]] = 0
        head = self.head[slots]
        self.ring[slots, head] = np.stack([fed, mean, std], axis=1)
        self.head[slots] = (head + 1) % self.span
        self.count[slots] += 1
        count = self.count[slots]
        learn = np.ones(len(slots), bool) if returns is None else ~returns
        if learn.sum() > self.max_pairs:
            chosen = np.flatnonzero(learn)
            self.turn = (self.turn + 1) % -(-len(chosen) // self.max_pairs)
            learn[:] = False
            learn[chosen[self.turn * self.max_pairs :][: self.max_pairs]] = True
        fade = 0.5 ** (1.0 / self.memory)
        self.gram *= fade
        self.moment *= fade
        self.pairs *= fade
        if not learn.any():
            return
        # Every horizon at once: the pair of horizon h was issued h steps ago, at ring
        # position span - 1 - h, from the lags before it (clamped at the series' start).
        h = np.arange(1, self.horizon + 1)
        rows, count = self._history(slots[learn], self.span), count[learn]
        issued = self.span - 1 - h  # [H]
        back = issued[:, None] - np.arange(self.lags)[None, :]  # [H, lags], newest first
        first = np.maximum(self.span - count, 0)[:, None, None]  # oldest valid position
        at = np.maximum(back[None], first)  # [n, H, lags]
        values = np.take_along_axis(rows[:, :, FED], at.reshape(len(rows), -1), axis=1)
        ok = count[:, None] >= h + self.lags  # [n, H]: issued with all its lags since the reset
        mean = rows[:, issued, MEAN]
        std = np.where(ok, rows[:, issued, STD], 1.0)  # (unset before a series' start)
        x = np.clip((values.reshape(at.shape) - mean[..., None]) / std[..., None], -LIMIT, LIMIT)
        x = np.concatenate([x, np.ones((*x.shape[:2], 1))], axis=2)  # [n, H, lags + 1]
        target = np.clip((fed[learn][:, None] - rows[:, issued, FED]) / std, -LIMIT, LIMIT)
        x = x * ok[..., None]
        per_horizon = x.transpose(1, 0, 2)  # [H, n, lags + 1]
        self.gram += per_horizon.transpose(0, 2, 1) @ per_horizon
        self.moment += (per_horizon.transpose(0, 2, 1) @ np.where(ok, target, 0.0).T[..., None])[
            ..., 0
        ]
        self.pairs += ok.sum(axis=0)
        self.since_refit += int(ok[:, 0].sum())

    def refit_if_due(self) -> None:
        """Refit once `refit_every` new pairs have arrived since the last refit."""
        if self.since_refit >= self.refit_every:
            self.refit()

    def refit(self) -> None:
        """Solve the normal equations (ridge-regularised) for every horizon at once."""
        width = self.lags + 1
        regular = torch.from_numpy(self.gram + self.ridge * np.eye(width)[None])
        # torch's batched solve: several times numpy's for [H, width, width] on one thread
        solved = torch.linalg.solve(regular, torch.from_numpy(self.moment)).numpy()  # [H, width]
        self.weights = np.ascontiguousarray(solved.T, dtype=np.float64)
        self.since_refit = 0

    def forecast(self, slots: I64, returns: Mask) -> F64:
        """[n, H] scaled changes from each slot's current value; 0 for returns."""
        self._ensure(slots)
        x = lag_features(self._history(slots, self.lags), self.count[slots], self.lags)
        out: F64 = np.where(returns[:, None], 0.0, x @ self.weights)
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "ring": self.ring.copy(),
            "head": self.head.copy(),
            "count": self.count.copy(),
            "gram": self.gram.copy(),
            "moment": self.moment.copy(),
            "pairs": self.pairs.copy(),
            "weights": self.weights.copy(),
            "since_refit": self.since_refit,
            "turn": self.turn,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["weights"].shape != self.weights.shape:
            raise ValueError(
                f"the checkpoint's lag regression maps {state['weights'].shape[0] - 1} lags "
                f"to {state['weights'].shape[1]} horizons; the config asks for {self.lags} "
                f"and {self.horizon}. Set model.lags back, or remove the checkpoint"
            )
        for name in ("ring", "count", "gram", "moment", "pairs", "weights"):
            setattr(self, name, np.array(state[name]))
        # (Rings saved before they were circular are oldest first: their head is 0.)
        self.head = np.array(state.get("head", np.zeros(len(self.count), dtype=np.int64)))
        self.since_refit = int(state.get("since_refit", 0))
        self.turn = int(state.get("turn", 0))
