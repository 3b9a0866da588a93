"""Training the recurrent forecaster's weights on recorded histories (pure compute).

Training sees exactly what serving sees: each series' values standardised by its
running statistics as they stood at each step (`scaled_histories`), and targets in the
same space, target(t, h) = (y[t+h] - mean[t]) / std[t]. Windows of consecutive steps
are trained with truncated backpropagation through time: the first `burn_in` steps of a
window only build the state; the loss covers the rest, over all horizons. A copy of the
network is trained, never the one serving; `evaluate` scores any network on held-out
windows, so a candidate can be compared with the current one before it is promoted.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray

from models.recurrent import RecurrentNet
from models.scaling import OnlineScaler

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class Histories:
    """Aligned [series, steps] arrays: scaled inputs, raw values and the scaler's
    mean and std at each step."""

    scaled: F64
    raw: F64
    mean: F64
    std: F64


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


def _targets(w: Histories, horizon: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[steps, windows, H] targets in each step's scaled space, and where they exist."""
    n, length = w.raw.shape
    target = np.zeros((n, length, horizon))
    known = np.zeros((n, length, horizon), dtype=bool)
    for h in range(1, horizon + 1):
        target[:, : length - h, h - 1] = (w.raw[:, h:] - w.mean[:, :-h]) / w.std[:, :-h]
        known[:, : length - h, h - 1] = True
    as_tensor = torch.as_tensor(target, dtype=torch.float32).transpose(0, 1)
    return as_tensor, torch.as_tensor(known).transpose(0, 1)


def _forward(net: RecurrentNet, w: Histories) -> torch.Tensor:
    x = torch.as_tensor(w.scaled, dtype=torch.float32).T.unsqueeze(-1)  # [steps, windows, 1]
    out, _ = net.rnn(x)
    prediction: torch.Tensor = net.head(out)  # [steps, windows, H]
    return prediction


def evaluate(net: RecurrentNet, w: Histories, burn_in: int) -> float:
    """Mean squared error (scaled space) after burn_in, over all horizons."""
    horizon = net.head.out_features
    target, known = _targets(w, horizon)
    known[:burn_in] = False
    with torch.no_grad():
        error = (_forward(net, w) - target) ** 2
    return float(error[known].mean())


@dataclass(frozen=True)
class TrainResult:
    net: RecurrentNet
    loss_before: float
    loss_after: float
    updates: int


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
) -> TrainResult:
    """Train a copy of net on train's windows; score both on validation's."""
    candidate = copy.deepcopy(net)
    candidate.train()
    horizon = candidate.head.out_features
    target, known = _targets(train, horizon)
    known[:burn_in] = False
    optimiser = torch.optim.Adam(candidate.parameters(), lr=learning_rate)
    rng = np.random.default_rng(seed)
    n = train.raw.shape[0]
    updates = 0
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            rows = order[start : start + batch_size]
            part = Histories(train.scaled[rows], train.raw[rows], train.mean[rows], train.std[rows])
            prediction = _forward(candidate, part)
            index = torch.as_tensor(rows)
            error = (prediction - target[:, index]) ** 2
            loss = error[known[:, index]].mean()
            optimiser.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimiser.step()
            updates += 1
    candidate.eval()
    return TrainResult(
        candidate,
        loss_before=evaluate(net, validation, burn_in),
        loss_after=evaluate(candidate, validation, burn_in),
        updates=updates,
    )
