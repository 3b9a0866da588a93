"""Training the recurrent forecaster's weights on recorded histories (pure compute).

Training sees exactly what serving sees: each series' values (or a price's log
returns) standardised by its running statistics as they stood at each step, as the
replay buffer recorded them, and targets in the same space: for levels
(y[t+h] - mean[t]) / std[t], for returns log(y[t+h] / y[t]) / std[t]. Windows of consecutive steps
are trained with truncated backpropagation through time: the first `burn_in` steps of a
window only build the state; the loss covers the rest, over all horizons. A copy of the
network is trained, never the one serving; `evaluate` scores any network on held-out
windows, so a candidate can be compared with the current one before it is promoted.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from models.base import TrainSettings
from models.features import calendar
from models.lag_regression import LIMIT
from models.recurrent import RecurrentNet
from models.replay_buffer import FED, MEAN, RAW, STD, Snapshot
from models.scaling import OnlineScaler

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class Histories:
    """Aligned [windows, steps] arrays: scaled inputs, raw values and the scaler's mean
    and std at each step; which windows are read as returns; extra inputs
    [windows, steps, k] (calendar features), if any."""

    scaled: F64
    raw: F64
    mean: F64
    std: F64
    returns: NDArray[np.bool_] | None = None
    extra: NDArray[np.float32] | None = None
    linear: NDArray[np.float32] | None = None  # the lag regression's forecasts [.., H]

    def __len__(self) -> int:
        return int(self.raw.shape[0])

    def take(self, rows: Any) -> Histories:
        return Histories(
            self.scaled[rows],
            self.raw[rows],
            self.mean[rows],
            self.std[rows],
            None if self.returns is None else self.returns[rows],
            None if self.extra is None else self.extra[rows],
            None if self.linear is None else self.linear[rows],
        )


def from_windows(
    snapshot: Snapshot, with_calendar: bool = False, linear: F64 | None = None
) -> Histories:
    """Histories of replay-buffer windows, with calendar inputs if the model reads them,
    and the forecasts of a lag regression with these weights [lags + 1, H], if any."""
    w = snapshot.windows
    raw, fed, mean, std = (w[..., i].astype(np.float64) for i in (RAW, FED, MEAN, STD))
    extra = None
    if with_calendar:
        steps = snapshot.first_steps[:, None] + np.arange(w.shape[1])
        extra = calendar(steps * snapshot.step_ns)
    forecasts = None if linear is None else lag_forecasts(fed, mean, std, snapshot.returns, linear)
    return Histories((fed - mean) / std, raw, mean, std, snapshot.returns, extra, forecasts)


def lag_forecasts(fed: F64, mean: F64, std: F64, returns: NDArray[np.bool_], weights: F64) -> Any:
    """[windows, steps, H] the lag regression's forecasts at each step of the windows, as
    serving makes them (`LagRegression.forecast`); 0 where a step has fewer than `lags`
    steps before it in its window (training ignores those) and for returns."""
    lags = weights.shape[0] - 1
    n, length = fed.shape
    out = np.zeros((n, length, weights.shape[1]), dtype=np.float32)
    if length < lags:
        return out
    past = np.lib.stride_tricks.sliding_window_view(fed, lags, axis=1)[..., ::-1]
    scaled = np.clip((past - mean[:, lags - 1 :, None]) / std[:, lags - 1 :, None], -LIMIT, LIMIT)
    x = np.concatenate([scaled, np.ones((*scaled.shape[:2], 1))], axis=-1)
    out[:, lags - 1 :] = np.where(returns[:, None, None], 0.0, x @ weights)
    return out


def recency_weights(n: int, half_life: float) -> F64:
    """Sampling probabilities for n windows, oldest first, halving every half_life windows.

    >>> recency_weights(3, 1.0).round(3).tolist()
    [0.143, 0.286, 0.571]
    """
    age = np.arange(n)[::-1]
    weights: F64 = 0.5 ** (age / max(half_life, 1e-9))
    weights /= weights.sum()
    return weights


def scaled_histories(raw: F64) -> Histories:
    """Run the serving scaler over [series, steps] values, keeping its state per step."""
    n, steps = raw.shape
    scaler = OnlineScaler()
    slots = np.arange(n)
    scaled, mean, std = (np.empty_like(raw) for _ in range(3))
    for t in range(steps):
        values = raw[:, t : t + 1]
        scaler.update(slots, values)
        scaled[:, t] = scaler.transform(slots, values)[:, 0]
        mean[:, t] = scaler.mean[slots, 0]
        std[:, t] = scaler.std(slots)[:, 0]
    return Histories(scaled, raw, mean, std)


def windows(h: Histories, length: int, stride: int) -> Histories:
    """Windows of `length` consecutive steps from every series, `stride` apart."""
    starts = range(0, h.raw.shape[1] - length + 1, stride)

    def cut(a: F64) -> F64:
        return np.concatenate([a[:, s : s + length] for s in starts])

    return Histories(cut(h.scaled), cut(h.raw), cut(h.mean), cut(h.std))


def split(h: Histories, validation_fraction: float) -> tuple[Histories, Histories]:
    """(older windows to train on, the most recent ones held out); both non-empty when
    there are two or more windows."""
    n = len(h)
    held = min(max(1, round(n * validation_fraction)), n - 1) if n > 1 else 0
    return h.take(slice(0, n - held)), h.take(slice(n - held, n))


def _device(net: RecurrentNet) -> torch.device:
    return next(net.parameters()).device


def _targets(w: Histories, horizon: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """[steps, windows, H] targets in each step's scaled space, and where they exist."""
    n, length = w.raw.shape
    target = np.zeros((n, length, horizon))
    known = np.zeros((n, length, horizon), dtype=bool)
    returns = np.zeros(n, bool) if w.returns is None else w.returns
    positive = w.raw > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        log_raw = np.log(np.where(positive, w.raw, 1.0))
    for h in range(1, horizon + 1):
        level = (w.raw[:, h:] - w.mean[:, :-h]) / w.std[:, :-h]
        change = (log_raw[:, h:] - log_raw[:, :-h]) / w.std[:, :-h]
        target[:, : length - h, h - 1] = np.where(returns[:, None], change, level)
        valid = ~returns[:, None] | (positive[:, h:] & positive[:, :-h])
        known[:, : length - h, h - 1] = valid
    as_tensor = torch.as_tensor(target, dtype=torch.float32, device=device).transpose(0, 1)
    return as_tensor, torch.as_tensor(known, device=device).transpose(0, 1)


def _forward(net: RecurrentNet, w: Histories) -> torch.Tensor:
    """[steps, windows, H] scaled forecasts at every step of the windows."""
    device = _device(net)
    scaled = torch.as_tensor(w.scaled, dtype=torch.float32, device=device).T.unsqueeze(-1)
    x = scaled  # [steps, windows, 1 + k]
    if w.extra is not None:
        extra = torch.as_tensor(w.extra, device=device).transpose(0, 1)
        x = torch.cat([scaled, extra], dim=-1)
    out, _ = net.rnn(x)
    anchor = scaled
    if w.returns is not None:
        levels = torch.as_tensor(~w.returns, dtype=torch.float32, device=device)
        anchor = scaled * levels.view(1, -1, 1)
    linear = None
    if w.linear is not None:
        linear = torch.as_tensor(w.linear, device=device).transpose(0, 1)
    prediction: torch.Tensor = net.forecast(out, anchor, linear)
    return prediction


def evaluate(net: RecurrentNet, w: Histories, burn_in: int) -> float:
    """Mean squared error (scaled space) after burn_in, over all horizons."""
    horizon = net.head.out_features
    target, known = _targets(w, horizon, _device(net))
    known[:burn_in] = False
    with torch.no_grad():
        error = (_forward(net, w) - target) ** 2
    return float(error[known].mean())


@dataclass(frozen=True)
class TrainResult:
    """A trained copy, its optimiser's state, and both networks' held-out loss."""

    net: RecurrentNet
    optimiser: dict[str, Any]
    loss_before: float
    loss_after: float
    updates: int
    windows: int  # windows trained on (with repeats), for throughput
    stopped_early: bool


def train_copy(
    net: RecurrentNet,
    train: Histories,
    validation: Histories,
    *,
    burn_in: int,
    epochs: int = 1,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    seed: int = 0,
    weights: F64 | None = None,
    optimiser_state: dict[str, Any] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> TrainResult:
    """Train a copy of net on train's windows; score both on validation's.

    Each epoch draws len(train) windows: a permutation, or a sample with replacement by
    `weights` (e.g. `recency_weights`). Adam continues from `optimiser_state` when given.
    `should_stop` is asked between updates (a time limit); the copy trained so far is
    still scored and returned.
    """
    candidate = copy.deepcopy(net)
    candidate.train()
    horizon = candidate.head.out_features
    target, known = _targets(train, horizon, _device(candidate))
    known[:burn_in] = False
    optimiser = _adam(candidate, learning_rate, optimiser_state)
    rng = np.random.default_rng(seed)
    n = len(train)
    updates = windows_seen = 0
    stopped = False
    for _ in range(epochs):
        order = rng.permutation(n) if weights is None else rng.choice(n, size=n, p=weights)
        for start in range(0, n, batch_size):
            if should_stop():
                stopped = True
                break
            rows = order[start : start + batch_size]
            _update(candidate, optimiser, train, rows, target, known)
            updates += 1
            windows_seen += len(rows)
        if stopped:
            break
    candidate.eval()
    return TrainResult(
        candidate,
        optimiser=copy.deepcopy(optimiser.state_dict()),
        loss_before=evaluate(net, validation, burn_in),
        loss_after=evaluate(candidate, validation, burn_in),
        updates=updates,
        windows=windows_seen,
        stopped_early=stopped,
    )


def _adam(
    net: RecurrentNet, learning_rate: float, state: dict[str, Any] | None
) -> torch.optim.Adam:
    """Adam over net's parameters at `learning_rate`, continuing from `state` when given."""
    optimiser = torch.optim.Adam(net.parameters(), lr=learning_rate)
    if state is not None:
        optimiser.load_state_dict(state)
        for group in optimiser.param_groups:
            group["lr"] = learning_rate
    return optimiser


def _update(
    net: RecurrentNet,
    optimiser: torch.optim.Adam,
    train: Histories,
    rows: Any,
    target: torch.Tensor,
    known: torch.Tensor,
) -> None:
    """One step of the optimiser on train's windows `rows`: the mean squared error over
    their targets that are known."""
    prediction = _forward(net, train.take(rows))
    index = torch.as_tensor(rows, device=target.device)
    error = (prediction - target[:, index]) ** 2
    loss = error[known[:, index]].mean()
    optimiser.zero_grad()
    loss.backward()  # type: ignore[no-untyped-call]
    optimiser.step()


@dataclass
class RecurrentJob:
    """A retrain of a recurrent forecaster: copies of its net, optimiser and lag weights
    and a snapshot of its replay buffer (`models.base.TrainingJob`)."""

    net: RecurrentNet
    snapshot: Snapshot
    optimiser: dict[str, Any] | None
    linear: Any  # the lag regression's weights, or None
    calendar: bool
    lags: int

    @property
    def stored(self) -> int:
        return len(self.snapshot)

    def train(
        self,
        settings: TrainSettings,
        seed: int,
        half_life: float | None,
        should_stop: Callable[[], bool],
    ) -> TrainResult:
        histories = from_windows(self.snapshot, self.calendar, self.linear)
        train, validation = split(histories, settings.validation_fraction)
        return train_copy(
            self.net,
            train,
            validation,
            burn_in=max(settings.burn_in, self.lags - 1),
            epochs=settings.epochs,
            batch_size=settings.batch_size,
            learning_rate=settings.learning_rate,
            seed=seed,
            weights=recency_weights(len(train), half_life=half_life or len(train) / 2),
            optimiser_state=self.optimiser,
            should_stop=should_stop,
        )
