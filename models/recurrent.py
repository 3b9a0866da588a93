"""A global recurrent forecaster (LSTM, or GRU) whose per-series state lives in a slab.

One network is shared by all series. Each series owns a slot in preallocated state
tensors `[layers, capacity, hidden]` (h, and c for an LSTM), grown when a slot beyond
the capacity appears. A step gathers the slots of the series in the batch, runs one
batched call of the cell, and scatters the new state back; a direct head maps the output
to forecasts for horizons 1..H at once. Inputs and forecasts are standardised per series
(`OnlineScaler`), so the weights are scale-free.

State is carried from batch to batch indefinitely and reset only on a row marked
`reset` (a new series, a long gap, or a series back from eviction). The steps of one
batch are consumed in order, one batched call per position in the series' sequences,
so feeding a sequence in one batch or split across many gives the same forecasts.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from models.base import ranks
from models.scaling import OnlineScaler
from streamer.records import Forecasts, StepBatch

Cell = Literal["lstm", "gru"]


class RecurrentNet(nn.Module):
    """The shared weights: a recurrent cell stack and a linear multi-horizon head."""

    def __init__(
        self,
        cell: Cell,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        dropout: float,
        horizon: int,
    ) -> None:
        super().__init__()
        kind = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = kind(
            input_size, hidden_size, num_layers, dropout=dropout if num_layers > 1 else 0.0
        )
        self.head = nn.Linear(hidden_size, horizon)


class RecurrentForecaster:
    """Stateful per-series forecasts from one global LSTM or GRU (see module doc)."""

    def __init__(
        self,
        horizon: int,
        *,
        cell: Cell = "lstm",
        input_size: int = 1,
        hidden_size: int = 32,
        num_layers: int = 1,
        dropout: float = 0.0,
        seed: int = 0,
        device: str = "cpu",
        version: int = 0,
    ) -> None:
        self._horizon = horizon
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.device = torch.device(device)
        self.version = version
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)  # the same seed gives the same initial weights
        self.net = RecurrentNet(cell, input_size, hidden_size, num_layers, dropout, horizon).to(
            self.device
        )
        torch.random.set_rng_state(generator_state)
        self.net.eval()
        self.scaler = OnlineScaler(width=input_size)
        self.h = self._zeros(0)
        self.c = self._zeros(0) if cell == "lstm" else None

    @property
    def name(self) -> str:
        return self.cell

    @property
    def horizon(self) -> int:
        return self._horizon

    def _zeros(self, capacity: int) -> torch.Tensor:
        return torch.zeros(self.num_layers, capacity, self.hidden_size, device=self.device)

    def _ensure_capacity(self, needed: int) -> None:
        capacity = self.h.shape[1]
        if needed <= capacity:
            return
        size = max(needed, 2 * capacity, 64)
        self.h = torch.cat([self.h, self._zeros(size - capacity)], dim=1)
        if self.c is not None:
            self.c = torch.cat([self.c, self._zeros(size - capacity)], dim=1)

    @torch.no_grad()
    def step(self, batch: StepBatch) -> Forecasts:
        yhat = np.empty((len(batch), self._horizon))
        if len(batch):
            self._ensure_capacity(int(batch.slots.max()) + 1)
        rank = ranks(batch.slots)
        for r in range(int(rank.max()) + 1 if len(rank) else 0):
            rows = np.flatnonzero(rank == r)
            slots = batch.slots[rows]
            index = torch.as_tensor(slots, device=self.device)
            reset = batch.reset[rows]
            if reset.any():
                self.scaler.reset(slots[reset])
                fresh = index[torch.as_tensor(reset, device=self.device)]
                self.h[:, fresh] = 0.0
                if self.c is not None:
                    self.c[:, fresh] = 0.0
            values = batch.values[rows]
            self.scaler.update(slots, values)
            x = torch.as_tensor(
                self.scaler.transform(slots, values), dtype=torch.float32, device=self.device
            )
            out = self._cell(x, index)
            scaled = self.net.head(out).double().cpu().numpy()
            yhat[rows] = self.scaler.inverse(slots, scaled)
        return Forecasts(batch.series, batch.steps, yhat, self.name, batch.step_ns)

    def _cell(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """One step of the cell for the slots in index: gather, run, scatter."""
        h = self.h[:, index]
        if self.c is not None:
            out, (h, c) = self.net.rnn(x.unsqueeze(0), (h, self.c[:, index]))
            self.c[:, index] = c
        else:
            out, h = self.net.rnn(x.unsqueeze(0), h)
        self.h[:, index] = h
        result: torch.Tensor = out[0]
        return result

    def state_dict(self) -> dict[str, Any]:
        return {
            "net": {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()},
            "scaler": self.scaler.state_dict(),
            "h": self.h.detach().cpu().clone(),
            "c": None if self.c is None else self.c.detach().cpu().clone(),
            "version": self.version,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.scaler.load_state_dict(state["scaler"])
        self.h = state["h"].to(self.device).clone()
        self.c = None if state["c"] is None else state["c"].to(self.device).clone()
        self.version = int(state["version"])
