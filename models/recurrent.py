"""A global recurrent forecaster (LSTM, or GRU) whose per-series state lives in a slab.

One network is shared by all series. Each series owns a slot in preallocated state
tensors `[layers, capacity, hidden]` (h, and c for an LSTM), grown when a slot beyond
the capacity appears. A step gathers the slots of the series in the batch, runs one
batched call of the cell, and scatters the new state back; a direct head maps the output
to forecasts for horizons 1..H at once. Inputs and forecasts are standardised per series
(`OnlineScaler`), so the weights are scale-free. The model reads each step's target
value (the close, for ohlc).

State is carried from batch to batch indefinitely and reset only on a row marked
`reset` (a new series, a long gap, or a series back from eviction). The steps of one
batch are consumed in order, one batched call per position in the series' sequences,
so feeding a sequence in one batch or split across many gives the same forecasts.

Every step is also recorded in a `ReplayBuffer`, in the scale the model saw it, for
retraining. New weights (`adopt`) come with a re-synchronisation of every series' state:
one batched burn-in over its recent steps, since the old state belongs to the old weights.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from models import series_rows
from models.base import Candidate, TrainingJob, grown, rank_groups
from models.features import CALENDAR_WIDTH, calendar, log_returns
from models.lag_regression import LagRegression
from models.replay_buffer import ReplayBuffer
from models.scaling import OnlineScaler
from models.series_rows import Rows
from streamer.core.records import Forecasts, StepBatch

Cell = Literal["lstm", "gru"]
# Intra-op threads for the serving step. A step is small work: a second thread costs
# more in hand-offs than it saves, many times over while training or I/O keep the other
# core busy (one LSTM call for 7 / 1,000 / 10,000 series: 47 / 35 / 82 ms with two threads,
# 0.4 / 1.6 / 11 ms with one, on two busy cores).
SERVING_THREADS = 1
HEAD_INIT = 0.1  # the head's initial weights, as a share of PyTorch's default init


class RecurrentNet(nn.Module):
    """The shared weights: a recurrent cell stack and a linear multi-horizon head.

    The head forecasts the change from the current (scaled) value, not the value itself,
    on top of the lag regression's forecast change where there is one. It starts near
    zero (the default init scaled by HEAD_INIT), so an untrained net adds almost nothing
    to "no change" plus the regression: the default init alone added noise of about a
    third of a standard deviation to every forecast. Training learns what differs.
    """

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
        with torch.no_grad():
            self.head.weight.mul_(HEAD_INIT)
            self.head.bias.zero_()

    def forecast(
        self, out: torch.Tensor, anchor: torch.Tensor, linear: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Scaled forecasts [..., H] from the cell's output, where "no change" is
        [..., 1] (the scaled value for levels, 0 for returns) and the lag regression's
        forecast change [..., H], if any."""
        result: torch.Tensor = self.head(out) + anchor
        if linear is not None:
            result = result + linear
        return result


class RecurrentForecaster:
    """Stateful per-series forecasts from one global LSTM or GRU (see module doc)."""

    def __init__(
        self,
        horizon: int,
        *,
        cell: Cell = "lstm",
        hidden_size: int = 32,
        num_layers: int = 1,
        dropout: float = 0.0,
        seed: int = 0,
        device: str = "cpu",
        version: int = 0,
        replay: ReplayBuffer | None = None,
        calendar: bool = False,
        returns: bool = False,
        scale_halflife: float | None = None,
        lags: int = 0,
        lag_memory: float = 5000.0,
    ) -> None:
        self._horizon = horizon
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.device = torch.device(device)
        self.version = version
        self.replay = replay
        self.calendar = calendar
        self.returns = returns  # price series read as log returns
        self.last_raw = np.zeros(0)  # each slot's previous value, for its log return
        self.trained_steps = 0  # window steps the serving weights have been trained on
        self.optimiser_state: dict[str, Any] | None = None  # carried from one retrain to the next
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)  # the same seed gives the same initial weights
        self.net = RecurrentNet(
            cell, 1 + (CALENDAR_WIDTH if calendar else 0), hidden_size, num_layers, dropout, horizon
        ).to(self.device)
        torch.random.set_rng_state(generator_state)
        self.net.eval()
        self.scaler = OnlineScaler(halflife=scale_halflife)
        self.linear = LagRegression(horizon, lags, memory=lag_memory) if lags else None
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
        if torch.get_num_threads() != SERVING_THREADS:
            torch.set_num_threads(SERVING_THREADS)  # for the calling (pipeline) thread
        yhat = np.empty((len(batch), self._horizon))
        if len(batch):
            self._ensure_capacity(int(batch.slots.max()) + 1)
        for rows in rank_groups(batch.slots):
            if self.linear is not None:  # before each rank: where batches are cut is moot
                self.linear.refit_if_due()
            slots = batch.slots[rows]
            index = torch.as_tensor(slots, device=self.device)
            reset = batch.reset[rows]
            if reset.any():
                self.scaler.reset(slots[reset])
                fresh = index[torch.as_tensor(reset, device=self.device)]
                self.h[:, fresh] = 0.0
                if self.c is not None:
                    self.c[:, fresh] = 0.0
            values = batch.target[rows]
            returns = self._reads_returns(batch.kinds[rows])
            fed = values
            if self.returns:
                self.last_raw = grown(self.last_raw, int(slots.max()) + 1)
                previous = np.where(reset, 0.0, self.last_raw[slots])
                fed = np.where(returns, log_returns(values, previous), values)
                self.last_raw[slots] = values
            self.scaler.update(slots, fed[:, None])
            scaled = self.scaler.transform(slots, fed[:, None])
            mean, std = self.scaler.mean[slots, 0], self.scaler.std(slots)[:, 0]
            steps = batch.steps[rows]
            if self.replay is not None:
                self.replay.record(
                    slots, steps, batch.step_ns, (values, fed, mean, std), reset, returns
                )
            x = torch.as_tensor(scaled, dtype=torch.float32, device=self.device)
            out = self._cell(self._inputs(x, steps * batch.step_ns), index)
            anchor = x * torch.as_tensor(~returns, dtype=torch.float32, device=self.device)[:, None]
            z = self.net.forecast(out, anchor).double().cpu().numpy()
            if self.linear is not None:
                self.linear.observe(slots, fed, mean, std, reset, returns)
                z += self.linear.forecast(slots, returns)
            level = z * std[:, None] + mean[:, None]
            if returns.any():
                change = np.exp(np.clip(z * std[:, None], -20.0, 20.0)) * values[:, None]
                level = np.where(returns[:, None], change, level)
            yhat[rows] = level
        return Forecasts(
            batch.series, batch.steps, yhat, self.name, batch.step_ns, version=self.version
        )

    def _reads_returns(self, kinds: np.ndarray) -> NDArray[np.bool_]:
        """Which rows are prices read as log returns (with `returns` on)."""
        flags: NDArray[np.bool_] = (kinds == "price") & self.returns
        return flags

    def _inputs(self, scaled: torch.Tensor, times_ns: NDArray[np.int64]) -> torch.Tensor:
        """The cell's input [n, 1 + k]: the scaled value, then calendar features."""
        if not self.calendar:
            return scaled
        features = torch.as_tensor(calendar(times_ns), device=self.device)
        return torch.cat([scaled, features], dim=-1)

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

    def take_rows(self, slots: NDArray[np.int64]) -> Rows:
        """These series' hidden (and cell) state, scale, lags and recent steps."""
        self._ensure_capacity(int(slots.max(initial=-1)) + 1)
        self.last_raw = grown(self.last_raw, int(slots.max(initial=-1)) + 1)
        index = torch.as_tensor(slots, device=self.device)
        return {
            "h": self.h[:, index].transpose(0, 1).cpu().numpy(),
            "c": None if self.c is None else self.c[:, index].transpose(0, 1).cpu().numpy(),
            "scaler": self.scaler.take_rows(slots),
            "last_raw": self.last_raw[slots].copy(),
            "linear": series_rows.optional(self.linear, lambda lin: lin.take_rows(slots)),
            "replay": series_rows.optional(self.replay, lambda rep: rep.take_rows(slots)),
        }

    def put_rows(self, slots: NDArray[np.int64], rows: Rows) -> None:
        self._ensure_capacity(int(slots.max(initial=-1)) + 1)
        self.last_raw = grown(self.last_raw, int(slots.max(initial=-1)) + 1)
        index = torch.as_tensor(slots, device=self.device)
        self.h[:, index] = torch.as_tensor(rows["h"], device=self.device).transpose(0, 1)
        if self.c is not None:
            self.c[:, index] = torch.as_tensor(rows["c"], device=self.device).transpose(0, 1)
        self.scaler.put_rows(slots, rows["scaler"])
        self.last_raw[slots] = rows["last_raw"]
        if self.linear is not None:
            self.linear.put_rows(slots, rows["linear"])
        if self.replay is not None:
            self.replay.put_rows(slots, rows["replay"])

    def reset(self, slots: NDArray[np.int64]) -> None:
        """Forget these series' state and scale; their next step starts them afresh."""
        slots = slots[slots < self.h.shape[1]]
        index = torch.as_tensor(slots, device=self.device)
        self.h[:, index] = 0.0
        if self.c is not None:
            self.c[:, index] = 0.0
        self.scaler.reset(slots)
        if self.linear is not None:
            self.linear.reset(slots)
        self.last_raw = grown(self.last_raw, int(slots.max(initial=-1)) + 1)
        self.last_raw[slots] = 0.0
        if self.replay is not None:
            self.replay.forget(slots)

    @property
    def recorded(self) -> int:
        return 0 if self.replay is None else self.replay.recorded

    @property
    def archived(self) -> int:
        return 0 if self.replay is None else self.replay.archived

    def training_job(self) -> TrainingJob:
        """Copies to train on another thread: the pipeline keeps this model meanwhile."""
        from models.training import RecurrentJob

        if self.replay is None:
            raise RuntimeError("retraining needs a forecaster with a replay buffer")
        return RecurrentJob(
            net=copy.deepcopy(self.net),
            snapshot=self.replay.snapshot(),
            optimiser=self.optimiser_state,
            linear=None if self.linear is None else self.linear.weights.copy(),
            calendar=self.calendar,
            lags=0 if self.linear is None else self.linear.lags,
        )

    def promote(self, job: TrainingJob, candidate: Candidate, burn_in: int) -> None:
        from models.training import RecurrentJob, TrainResult

        if not isinstance(job, RecurrentJob) or not isinstance(candidate, TrainResult):
            raise TypeError("promote takes the job and candidate this model's training made")
        window = job.snapshot.windows.shape[1]
        steps = self.trained_steps + candidate.windows * (window - burn_in)
        self.adopt(candidate.net, self.version + 1, steps, candidate.optimiser)

    def weights(self) -> dict[str, Any]:
        """The serving weights and version, as plain tensors (`adopt_weights`)."""
        net = {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()}
        shape = (self.cell, self.num_layers, self.hidden_size, self._horizon)
        more = {"trained_steps": self.trained_steps, "optimiser": self.optimiser_state}
        return {"net": net, "version": self.version, "shape": shape} | more

    def adopt_weights(self, weights: dict[str, Any]) -> None:
        """Serve weights another replica published, rebuilding every series' state."""
        shape = (self.cell, self.num_layers, self.hidden_size, self._horizon)
        if tuple(weights["shape"]) != shape:
            raise ValueError(
                f"published weights of (cell, layers, hidden, horizon) {weights['shape']}; "
                f"this replica's model is {shape}: every replica of a group needs the same "
                "model settings"
            )
        self.net.load_state_dict(weights["net"])
        w = weights
        self.adopt(self.net, int(w["version"]), int(w["trained_steps"]), w["optimiser"])

    def take_shared(self) -> Any:
        """Own training windows since the last call (`ReplayBuffer.take_shared`)."""
        return None if self.replay is None else self.replay.take_shared()

    def add_shared(self, windows: Any) -> None:
        if self.replay is not None and windows is not None:
            self.replay.add_shared(windows)

    def adopt(
        self, net: RecurrentNet, version: int, trained_steps: int, optimiser: dict[str, Any]
    ) -> None:
        """Serve with new weights from now on, and rebuild every series' state with them."""
        self.net.load_state_dict(net.state_dict())
        self.net.eval()
        self.version = version
        self.trained_steps = trained_steps
        self.optimiser_state = optimiser
        self.resync()

    @torch.no_grad()
    def resync(self, chunk: int = 16_384) -> None:
        """Each series' state as the current weights would have it after its recent steps
        (from zero state at the first of them): one batched call per step position."""
        if self.replay is None:
            raise RuntimeError("resync needs the replay buffer's recent steps")
        self.h.zero_()
        if self.c is not None:
            self.c.zero_()
        recent = self.replay.recent_inputs()
        if len(recent.slots):
            self._ensure_capacity(int(recent.slots.max()) + 1)
        length = recent.scaled.shape[1]
        step_ns = self.replay.step_ns
        for start in range(0, len(recent.slots), chunk):
            part = slice(start, start + chunk)
            index = torch.as_tensor(recent.slots[part], device=self.device)
            x = torch.as_tensor(recent.scaled[part], device=self.device)
            first = torch.as_tensor(length - recent.count[part], device=self.device)
            last_steps = recent.last_steps[part]
            for t in range(length):
                started = (first <= t).view(1, -1, 1)
                h, c = self.h[:, index], None if self.c is None else self.c[:, index]
                times = (last_steps - (length - 1 - t)) * step_ns
                self._cell(self._inputs(x[:, t : t + 1], times), index)
                # Series whose recent steps start later keep their zero state until then.
                self.h[:, index] = torch.where(started, self.h[:, index], h)
                if self.c is not None and c is not None:
                    self.c[:, index] = torch.where(started, self.c[:, index], c)

    def state_dict(self) -> dict[str, Any]:
        return {
            "net": {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()},
            "scaler": self.scaler.state_dict(),
            "h": self.h.detach().cpu().clone(),
            "c": None if self.c is None else self.c.detach().cpu().clone(),
            "version": self.version,
            "trained_steps": self.trained_steps,
            "optimiser": self.optimiser_state,
            "replay": None if self.replay is None else self.replay.state_dict(),
            "last_raw": self.last_raw.copy(),
            "linear": None if self.linear is None else self.linear.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.scaler.load_state_dict(state["scaler"])
        self.h = state["h"].to(self.device).clone()
        self.c = None if state["c"] is None else state["c"].to(self.device).clone()
        self.version = int(state["version"])
        self.trained_steps = int(state["trained_steps"])
        self.optimiser_state = state["optimiser"]
        self.last_raw = np.array(state["last_raw"], dtype=float)
        if self.linear is not None and state.get("linear") is not None:
            self.linear.load_state_dict(state["linear"])
        if self.replay is not None and state["replay"] is not None:
            self.replay.load_state_dict(state["replay"])
