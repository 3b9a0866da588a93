"""One model lineage across replicas: one trains on everyone's windows, all serve it."""

from __future__ import annotations

import numpy as np
import torch

from models.recurrent import RecurrentForecaster
from models.replay_buffer import ReplayBuffer
from streamer.engine.lineage import Lineage
from streamer.engine.retrain import Retrainer, RetrainSettings
from tests.helpers import seasonal, step_batch

H, WINDOW, BURN_IN = 3, 24, 8


class Hub:
    """What the broker holds for a group: who is elected, the published weights and
    the windows sent, read by each link from where it last stopped."""

    def __init__(self) -> None:
        self.elected = ""
        self.models: list[tuple[int, bytes]] = []
        self.windows: list[tuple[str, bytes]] = []


class Link:
    def __init__(self, hub: Hub, instance: str) -> None:
        self.hub, self.instance = hub, instance
        self.models_read = self.windows_read = 0

    @property
    def trainer(self) -> bool:
        return self.hub.elected == self.instance

    def publish(self, version: int, weights: bytes) -> None:
        assert self.trainer, "only the trainer publishes"
        self.hub.models.append((version, weights))

    def latest(self) -> tuple[int, bytes] | None:
        new = self.hub.models[self.models_read :]
        self.models_read = len(self.hub.models)
        return max(new, default=None)

    def send_windows(self, windows: bytes) -> None:
        self.hub.windows.append((self.instance, windows))

    def take_windows(self) -> list[bytes]:
        new = self.hub.windows[self.windows_read :]
        self.windows_read = len(self.hub.windows)
        return [blob for who, blob in new if who != self.instance]

    def close(self) -> None:
        pass


def replica(hub: Hub, name: str) -> tuple[Lineage, RecurrentForecaster]:
    net = RecurrentForecaster(
        H, hidden_size=8, replay=ReplayBuffer(WINDOW, WINDOW - BURN_IN - H, 100_000)
    )
    settings = RetrainSettings(burn_in=BURN_IN, epochs=2, batch_size=16, min_new_steps=1)
    return Lineage(Retrainer(net, settings), Link(hub, name)), net


def feed(net: RecurrentForecaster, values: np.ndarray, start: int, stop: int) -> None:
    for t in range(start, stop):
        net.step(step_batch(values[:, t], t, reset=t == 0))


def same_weights(a: RecurrentForecaster, b: RecurrentForecaster) -> bool:
    ours, theirs = a.net.state_dict(), b.net.state_dict()
    return all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_the_elected_replica_trains_on_every_replicas_windows_and_all_serve_it() -> None:
    hub = Hub()
    hub.elected = "a"
    a, net_a = replica(hub, "a")
    b, net_b = replica(hub, "b")
    values = seasonal(8, 120, 12)
    a.poll(0), b.poll(0)  # joined: windows archived from here are handed on
    feed(net_a, values[:4], 0, 120)  # each replica reads its own series
    feed(net_b, values[4:], 0, 120)
    own = net_a.replay.archived if net_a.replay else 0
    b.poll(0)  # hands its windows on
    a.poll(0)
    assert net_a.replay is not None
    assert net_b.replay is not None
    assert net_b.replay.archived > 0
    assert net_a.replay.archived == own + net_b.replay.archived  # B's windows came in

    b.retrainer.request("schedule")
    assert b.poll(0) == []
    assert not b.retrainer.running  # B is not the trainer: its request is dropped
    attempt = a.retrainer.run_now("schedule")
    assert attempt is not None
    assert attempt.promoted
    a.poll(0)
    assert [v for v, _ in hub.models] == [1]
    b.poll(0)
    assert net_b.version == 1
    assert same_weights(net_a, net_b)

    hub.elected = "b"  # A died: B takes training over, from the lineage's newest version
    attempt = b.retrainer.run_now("schedule")
    assert attempt is not None
    assert attempt.promoted
    b.poll(0)
    a.poll(0)
    assert [v for v, _ in hub.models] == [1, 2]
    assert net_a.version == net_b.version == 2
    assert same_weights(net_a, net_b)
    assert (a.outcomes["adopted"], b.outcomes["adopted"]) == (1, 1)
