"""Retraining while serving: a better candidate is promoted and serves, a worse one is
not, the stream never waits for training, and a checkpoint carries what was learnt."""

from __future__ import annotations

import logging
import pickle
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
import torch

from connectors.base import Output, RawRecord, StreamSource
from connectors.codecs import Decoder
from connectors.memory import MemorySink
from models.baseline import LastValue, SeasonalNaive
from models.cold_start import ColdStart
from models.recurrent import RecurrentForecaster
from models.replay_buffer import FED, RAW, ReplayBuffer
from streamer.core.records import NS_PER_S, Forecasts, Position
from streamer.engine.pipeline import Pipeline, PipelineSettings
from streamer.engine.retrain import Retrainer, RetrainSettings
from streamer.engine.window import WindowBuffer
from tests.helpers import seasonal, step_batch

SEASON, HORIZON, SERIES = 24, 6, 32
WINDOW, BURN_IN = 96, SEASON


def recurrent(seed: int = 1) -> RecurrentForecaster:
    replay = ReplayBuffer(WINDOW, WINDOW - BURN_IN - HORIZON, capacity_steps=1_000_000)
    return RecurrentForecaster(HORIZON, hidden_size=32, seed=seed, replay=replay)


def feed(model: Any, raw: np.ndarray, start: int, stop: int) -> list[Forecasts]:
    return [model.step(step_batch(raw[:, t], t, reset=t == 0)) for t in range(start, stop)]


def mae(forecasts: list[Forecasts], raw: np.ndarray, start: int) -> float:
    """Over every horizon of forecasts issued at steps start.. whose target is known."""
    errors = [
        np.abs(f.yhat[:, h - 1] - raw[:, start + i + h])
        for i, f in enumerate(forecasts)
        for h in range(1, HORIZON + 1)
        if start + i + h < raw.shape[1]
    ]
    return float(np.mean(errors))


def test_a_better_candidate_is_promoted_and_serves_instead_of_the_baseline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    raw = seasonal(SERIES, 480, SEASON)
    lstm = recurrent()
    model = ColdStart(lstm, SeasonalNaive(HORIZON, SEASON), min_train_steps=1_000)
    settings = RetrainSettings(burn_in=BURN_IN, epochs=120, batch_size=32, learning_rate=1e-2)
    retrainer = Retrainer(lstm, settings)

    cold = feed(model, raw, 0, 360)
    assert {f.model for f in cold} == {"baseline"}
    attempt = retrainer.run_now()

    assert attempt is not None
    assert attempt.promoted
    assert attempt.loss_after < 0.5 * attempt.loss_before
    assert attempt.version == lstm.version == 1
    warm = feed(model, raw, 360, 480)
    served = [(f.model, f.version) for f in warm]
    # The new weights serve once their live errors (a few steps' worth) beat the baseline's,
    # and from then on.
    took_over = served.index(("lstm", 1))
    assert took_over <= 3 * HORIZON, served[: took_over + 1]
    assert set(served[took_over:]) == {("lstm", 1)}
    start = 360 + took_over
    naive = feed(SeasonalNaive(HORIZON, SEASON), raw, 0, 480)[start:]
    lstm_mae, naive_mae = mae(warm[took_over:], raw, start), mae(naive, raw, start)
    assert lstm_mae < 0.9 * naive_mae, f"LSTM {lstm_mae:.3f} vs seasonal naive {naive_mae:.3f}"
    # One INFO line each for the retrain and its promotion, and for the takeover, with why.
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    (retrain,) = [m for m in said if m.startswith("retrain (on demand)")]
    assert re.fullmatch(
        r"retrain \(on demand\): held-out loss [\d.e+-]+ -> [\d.e+-]+ on \d+ windows in "
        r"[\d.]+s; promoted, serving version 1",
        retrain,
    ), retrain
    (takeover,) = [m for m in said if "takes over" in m]
    assert re.fullmatch(
        r"lstm takes over from the baseline: its recent squared error is [\d.e+-]+, the "
        r"baseline's [\d.e+-]+",
        takeover,
    ), takeover


def test_a_worse_candidate_is_not_promoted_and_the_serving_weights_stay() -> None:
    raw = seasonal(SERIES, 360, SEASON)
    lstm = recurrent()
    feed(lstm, raw, 0, 300)
    serving = {k: v.clone() for k, v in lstm.net.state_dict().items()}
    # A learning rate this large wrecks the weights: the candidate is worse by far.
    settings = RetrainSettings(burn_in=BURN_IN, epochs=5, batch_size=16, learning_rate=50.0)
    attempt = Retrainer(lstm, settings).run_now()

    assert attempt is not None
    assert not attempt.promoted
    assert not attempt.loss_after < attempt.loss_before
    assert lstm.version == 0
    for name, value in lstm.net.state_dict().items():
        assert torch.equal(value, serving[name]), name


def test_a_checkpoint_after_a_promotion_continues_exactly() -> None:
    raw = seasonal(8, 300, SEASON)
    lstm = recurrent()
    feed(lstm, raw, 0, 250)
    settings = RetrainSettings(burn_in=BURN_IN, epochs=3, batch_size=8, learning_rate=1e-2)
    attempt = Retrainer(lstm, settings).run_now()
    assert attempt is not None
    assert attempt.promoted
    state = pickle.loads(pickle.dumps(lstm.state_dict()))

    restored = recurrent(seed=99)  # other initial weights: all must come from the state
    restored.load_state_dict(state)
    assert restored.version == 1
    assert restored.optimiser_state is not None
    expected, got = feed(lstm, raw, 250, 300), feed(restored, raw, 250, 300)
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_array_equal(a.yhat, b.yhat)
    # The next retrain starts from the same replay buffer and optimiser state.
    assert lstm.replay is not None
    assert restored.replay is not None
    np.testing.assert_array_equal(
        lstm.replay.snapshot().windows, restored.replay.snapshot().windows
    )


class Ticker(StreamSource):
    """An endless stream: each poll gives the next second of every series' sine wave."""

    def __init__(self, series: int) -> None:
        self.name = "ticker"
        self.series = series
        self.second = 0

    def poll(self, max_records: int, timeout: float) -> list[RawRecord]:
        time.sleep(0.002)
        t, self.second = self.second, self.second + 1
        records = []
        for k in range(self.series):
            value = 100 + 10 * np.sin(2 * np.pi * t / SEASON + k)
            payload = b'{"id":"s%d","value":%f,"ts":%d}' % (k, value, (1_700_000_000 + t) * 1000)
            records.append(RawRecord(payload, Position(self.name, "", t * self.series + k)))
        return records

    def commit(self, positions: Mapping[str, int]) -> None:
        pass

    def seek(self, positions: Mapping[str, int]) -> None:
        pass

    def close(self) -> None:
        pass


class TimedSink(MemorySink):
    """Keeps when (wall clock) each output was written."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[float] = []

    def write(self, output: Output) -> None:
        super().write(output)
        self.written.append(time.time())


def test_forecasts_keep_flowing_while_a_retrain_runs() -> None:
    lstm = recurrent()
    sink = TimedSink()
    # Many epochs, cut at max_duration: training takes about two seconds.
    settings = RetrainSettings(
        burn_in=BURN_IN, epochs=100_000, batch_size=4, min_new_steps=1, max_duration=2.0
    )
    retrainer = Retrainer(lstm, settings)
    pipeline = Pipeline(
        sources=[
            (Ticker(series=20), Decoder(kind="sensor", series_field="id", value_field="value"))
        ],
        window=WindowBuffer(step_ns=NS_PER_S, max_series=100),
        forecaster=lstm,
        sinks=[sink],
        retrainer=retrainer,
        settings=PipelineSettings(max_wait=0, checkpoint_every=None),
    )
    stop = threading.Event()
    runner = threading.Thread(target=pipeline.run, args=(stop,))
    runner.start()
    try:
        deadline = time.monotonic() + 60
        while lstm.replay is not None and lstm.replay.archived < 40:
            assert time.monotonic() < deadline, "the replay buffer never filled"
            time.sleep(0.05)
        retrainer.request("test")
        while not any(o.events for o in sink.outputs):
            assert time.monotonic() < deadline, "the retrain never finished"
            time.sleep(0.05)
    finally:
        stop.set()
        runner.join()
        pipeline.close()

    (event,) = [e for o in sink.outputs for e in o.events]
    assert event.measurement == "retrain"
    assert event.fields["reason"] == "test"
    seconds = float(event.fields["seconds"])
    assert seconds >= 2.0
    end = event.time_ns / NS_PER_S
    during = [t for t in sink.written if end - seconds + 0.1 < t < end - 0.1]
    # The loop polls every few milliseconds; a blocked one would write nothing here.
    assert len(during) > 20, f"{len(during)} outputs written during a {seconds:.1f}s retrain"
    assert max(np.diff(during)) < 0.5


def test_prices_read_as_returns_learn_a_pattern_in_their_returns() -> None:
    # Geometric prices at very different levels; their returns follow a cycle.
    rng = np.random.default_rng(4)
    steps, series = 480, 16
    t = np.arange(steps)
    phase = rng.uniform(0, 2 * np.pi, (series, 1))
    returns = 0.02 * np.sin(2 * np.pi * t / 12 + phase) + rng.normal(0, 0.002, (series, steps))
    prices = rng.uniform(10, 1000, (series, 1)) * np.exp(np.cumsum(returns, axis=1))
    replay = ReplayBuffer(WINDOW, WINDOW - BURN_IN - HORIZON, capacity_steps=1_000_000)
    lstm = RecurrentForecaster(HORIZON, hidden_size=32, seed=1, returns=True, replay=replay)

    def run(model: Any, start: int, stop: int) -> list[Forecasts]:
        return [
            model.step(step_batch(prices[:, i], i, reset=i == 0, kind="price"))
            for i in range(start, stop)
        ]

    run(lstm, 0, 360)
    # The model read log returns, and trains on them.
    window = replay.snapshot().windows[0].astype(float)
    assert replay.snapshot().returns.all()
    np.testing.assert_allclose(window[1:, FED], np.diff(np.log(window[:, RAW])), atol=1e-5)
    settings = RetrainSettings(burn_in=BURN_IN, epochs=60, batch_size=16, learning_rate=1e-2)
    attempt = Retrainer(lstm, settings).run_now()
    assert attempt is not None
    assert attempt.promoted
    warm = run(lstm, 360, 480)
    assert all((f.yhat > 0).all() for f in warm)  # a price forecast stays a price
    last = run(LastValue(HORIZON), 0, 480)[360:]
    lstm_mae, last_mae = mae(warm, prices, 360), mae(last, prices, 360)
    assert lstm_mae < 0.5 * last_mae, f"LSTM {lstm_mae:.3f} vs last value {last_mae:.3f}"


def test_a_retrain_for_drift_waits_for_min_new_steps_of_the_changed_stream() -> None:
    raw = seasonal(4, 400, SEASON)
    lstm = recurrent()
    feed(lstm, raw, 0, 300)
    retrainer = Retrainer(lstm, RetrainSettings(burn_in=BURN_IN, epochs=1, min_new_steps=200))
    retrainer.request("drift", fresh_data=True)
    try:
        retrainer.poll(0)
        assert not retrainer.running  # nothing has arrived since the drift
        feed(lstm, raw, 300, 349)  # 4 series x 49 steps: 196 new steps
        retrainer.poll(0)
        assert not retrainer.running
        feed(lstm, raw, 349, 350)  # 200
        retrainer.poll(0)
        assert retrainer.running
    finally:
        retrainer.stop()
