"""Drift detection with the default detector: on stationary noise (independent,
autocorrelated, seasonal) at most 1 alarm per 10,000 steps per series on the inputs and
on the errors; a 3-sd level shift in the inputs, or a 3-sd jump in the errors, found
within 50 steps; an outlier or errors that fall are not drift; a storm of detections
asks for one retrain per cooldown, logged with its cause."""

from __future__ import annotations

import dataclasses
import logging
import math
import pickle
from typing import Any

import numpy as np
import pytest

from models.baseline import LastValue
from models.outcomes import Outcomes
from streamer.config.drift import make_detector
from streamer.config.schema import AdwinDetector, DriftConfig
from streamer.core.records import NS_PER_S, ForecastErrors, StepBatch, concat_batches
from streamer.engine.drift import Detection, DriftMonitor, Signal
from streamer.engine.drift_response import DriftResponse
from streamer.engine.page_hinkley import PageHinkleyFeeds, PageHinkleyParams
from streamer.engine.river_feeds import _Feed
from tests.helpers import STEP, step_batch

SERIES, CHANGE, AFTER = 8, 2_000, 500
Fired = dict[Signal, list[list[int]]]  # per signal, per series: the steps it fired at


def default_monitor(*signals: Signal) -> DriftMonitor:
    """The monitor the daemon builds from an empty `drift` config section."""
    detector = DriftConfig().detector
    return DriftMonitor(make_detector(detector), detector.type, signals or ("error", "input"))


def run(values: np.ndarray, model: Any = None, monitor: DriftMonitor | None = None) -> Fired:
    """Values [series, steps] through forecasts, their scored errors and a monitor, as
    the pipeline runs them; the steps at which each series' detectors fired."""
    monitor = monitor or default_monitor()
    model, outcomes = model or LastValue(1), Outcomes(1, window=50)
    fired: Fired = {"error": [[] for _ in values], "input": [[] for _ in values]}
    for t in range(values.shape[1]):
        batch = step_batch(values[:, t], t, reset=t == 0)
        errors, _ = outcomes.observe(batch, model.step(batch))
        for d in monitor.update(batch, errors):
            fired[d.signal][d.slot].append(t)
    return fired


def noise(kind: str, series: int, steps: int, seed: int) -> np.ndarray:
    """Stationary series [series, steps] with unit std around different levels."""
    rng = np.random.default_rng(seed)
    e = rng.normal(size=(series, steps))
    level = rng.uniform(-100, 100, (series, 1))
    if kind == "gaussian":
        return level + e
    if kind == "ar1":  # phi 0.8: a long memory, as sensor readings have
        x = np.empty_like(e)
        x[:, 0] = e[:, 0]
        for t in range(1, steps):
            x[:, t] = 0.8 * x[:, t - 1] + 0.6 * e[:, t]
        return level + x
    phase = rng.uniform(0, 2 * np.pi, (series, 1))  # a daily cycle of hourly steps
    cycle = 2 * np.sin(2 * np.pi * np.arange(steps) / 24 + phase)
    out: np.ndarray = level + (cycle + e) / np.sqrt(3)
    return out


def first_alarms_after(fired: list[list[int]], change: int) -> list[int | None]:
    """Per series, steps from the change to its first alarm (None: never)."""
    return [min((t - change for t in steps if t >= change), default=None) for steps in fired]


def test_stationary_noise_raises_at_most_one_alarm_per_10k_steps_per_series() -> None:
    # 20 series each of independent, AR(1) 0.8 and seasonal noise in one run; the
    # last-value forecast's errors carry the noise's memory and the daily cycle.
    kinds, per_kind, steps = ("gaussian", "ar1", "seasonal"), 20, 10_000
    values = np.concatenate([noise(k, per_kind, steps, seed=11 + i) for i, k in enumerate(kinds)])
    fired = run(values, LastValue(1))
    for signal, per_series in fired.items():
        for i, kind in enumerate(kinds):
            alarms = sum(len(f) for f in per_series[i * per_kind : (i + 1) * per_kind])
            rate = alarms * 10_000 / (per_kind * steps)
            assert rate <= 1.0, f"{kind} {signal}: {rate:.2f} alarms per 10,000 steps per series"


@pytest.mark.parametrize("kind", ["gaussian", "ar1", "seasonal"])
def test_a_3_sd_level_shift_in_the_inputs_is_found_within_50_steps(kind: str) -> None:
    series, change = 30, 1_000
    values = noise(kind, series, change + 200, seed=21)
    values[:, change:] += 3.0  # the series have unit std
    fired = run(values, monitor=default_monitor("input"))["input"]
    assert sum(t < change for f in fired for t in f) <= 1, "alarms before the change"
    delays = first_alarms_after(fired, change)
    late = [d for d in delays if d is None or d > 50]
    # An AR(1) 0.8 series can stand near the shift's level just before it, so one of
    # them may take longer; independent and seasonal noise never does.
    assert len(late) <= (1 if kind == "ar1" else 0), f"steps to detection: {delays}"
    assert all(d is not None and d <= 100 for d in delays), delays


def test_a_3_sd_jump_in_the_errors_is_found_within_50_steps() -> None:
    series, change = 30, 1_000
    rng = np.random.default_rng(31)
    scaled = np.abs(rng.normal(size=(series, change + 200)))
    scaled[:, change:] += 3 * scaled[:, :change].std()
    monitor = default_monitor("error")
    names = np.array([f"s{i}" for i in range(series)], dtype=object)
    fired: list[list[int]] = [[] for _ in range(series)]
    for t in range(scaled.shape[1]):
        errors = ForecastErrors(
            series=names,
            slots=np.arange(series),
            steps=np.full(series, t, dtype=np.int64),
            horizon=np.ones(series, dtype=np.int64),
            error=scaled[:, t],
            scaled=scaled[:, t],
            model=np.full(series, "m", dtype=object),
            step_ns=STEP,
        )
        for d in monitor.update(step_batch(np.zeros(series), t), errors):
            assert d.signal == "error"
            assert d.statistic > 1.5  # reported as a rise, in reference sds
            fired[d.slot].append(t)
    assert sum(t < change for f in fired for t in f) == 0
    delays = first_alarms_after(fired, change)
    assert all(d is not None and d <= 50 for d in delays), delays


def assert_found_soon_and_rarely_before(per_series: list[list[int]], delay: int) -> None:
    for series, steps in enumerate(per_series):
        before = [t for t in steps if t < CHANGE]
        after = [t for t in steps if t >= CHANGE]
        assert len(before) <= 1, f"series {series}: {len(before)} false alarms at {before}"
        assert after, f"series {series}: the change was never detected"
        assert after[0] - CHANGE <= delay, f"series {series}: found {after[0] - CHANGE} steps late"


def test_a_2_sd_level_shift_in_the_inputs_is_found_within_100_steps() -> None:
    rng = np.random.default_rng(1)
    values = 50 + rng.normal(0, 1, (SERIES, CHANGE + AFTER))
    values[:, CHANGE:] += 2.0
    fired = run(values, monitor=default_monitor("input"))
    assert_found_soon_and_rarely_before(fired["input"], delay=100)


def test_a_variance_change_is_found_in_the_forecast_errors() -> None:
    rng = np.random.default_rng(2)
    noise = rng.normal(0, 1, (SERIES, CHANGE + AFTER))
    noise[:, CHANGE:] *= 3.0  # the same mean: only the spread, so the errors, grow
    fired = run(50 + noise, monitor=default_monitor("error"))
    assert_found_soon_and_rarely_before(fired["error"], delay=150)


def test_errors_that_fall_are_not_reported() -> None:
    rng = np.random.default_rng(3)
    noise = rng.normal(0, 3, (SERIES, 2_000))
    noise[:, 1_000:] /= 3.0  # a better model would do this to its errors
    fired = run(50 + noise, monitor=default_monitor("error"))
    assert fired["error"] == [[] for _ in range(SERIES)]


def test_an_outlier_is_not_drift() -> None:
    rng = np.random.default_rng(4)
    values = 50 + rng.normal(0, 1, (SERIES, 1_500))
    values[:, 1_000] += 1_000.0  # one wild reading; the next one is normal again
    fired = run(values)
    assert fired == {"error": [[] for _ in range(SERIES)], "input": [[] for _ in range(SERIES)]}


def test_a_plain_adwin_still_sees_the_raw_signal() -> None:
    rng = np.random.default_rng(5)
    values = 50 + rng.normal(0, 1, (SERIES, 1_500))
    values[:, 1_000:] += 2.0
    monitor = DriftMonitor(make_detector(AdwinDetector(type="adwin")), "adwin", ("input",))
    delays = first_alarms_after(run(values, monitor=monitor)["input"], 1_000)
    assert all(d is not None and d <= 100 for d in delays), delays


def test_a_restored_monitor_detects_what_an_uninterrupted_one_does() -> None:
    values = noise("gaussian", 6, 1_200, seed=6)
    values[:, 900:] += 3.0
    whole = run(values)
    first = default_monitor()
    model, outcomes = LastValue(1), Outcomes(1, window=50)
    fired: Fired = {"error": [[] for _ in values], "input": [[] for _ in values]}
    for t in range(values.shape[1]):
        if t == 950:  # mid-way through the change, every reference armed
            state = pickle.loads(pickle.dumps(first.state_dict()))
            first = default_monitor()
            first.load_state_dict(state)
        batch = step_batch(values[:, t], t, reset=t == 0)
        errors, _ = outcomes.observe(batch, model.step(batch))
        for d in first.update(batch, errors):
            fired[d.signal][d.slot].append(t)
    assert fired == whole
    assert any(whole["input"])


def storm(first_s: int, seconds: int, series: int = 20) -> list[Detection]:
    """Detections in `series` series, one every 3 s of event time from `first_s`."""
    return [
        Detection(f"s{i}", i, "input", "page_hinkley", 3.25, (first_s + t) * NS_PER_S)
        for t in range(0, seconds, 3)
        for i in range(series)
    ]


def test_a_storm_of_detections_asks_for_one_retrain_per_cooldown_and_logs_its_cause(
    caplog: pytest.LogCaptureFixture,
) -> None:
    asked: list[str] = []
    response = DriftResponse("retrain", 600.0, asked.append, None)
    with caplog.at_level(logging.INFO, logger="streamer.engine.drift_response"):
        for d in storm(1_000, 300):
            response.apply([d])
        assert asked == ["drift"]  # 2,000 detections within 300 s of event time
        response.apply([Detection("s7", 7, "error", "page_hinkley", 4.5, (1_000 + 600) * NS_PER_S)])
    assert asked == ["drift", "drift"]
    assert response.retrains_requested == 2
    assert response.held_back == 1_999
    retrains = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.INFO and r.getMessage().startswith("retrain requested")
    ]
    assert retrains == [
        "retrain requested on drift: series s0, signal input, detector page_hinkley, "
        "statistic +3.25 sd, at 1970-01-01T00:16:40+00:00; 0 other series drifted in the "
        "same cooldown window (the 600 s up to it)",
        "retrain requested on drift: series s7, signal error, detector page_hinkley, "
        "statistic +4.50 sd, at 1970-01-01T00:26:40+00:00; 19 other series drifted in the "
        "same cooldown window (the 600 s up to it)",
    ]
    held = [r.getMessage() for r in caplog.records if "held back" in r.getMessage()]
    assert len(held) == 1_999
    assert held[-1].endswith("19 other series have drifted since it")


def test_the_retrain_cooldown_survives_a_restart() -> None:
    asked: list[str] = []
    response = DriftResponse("retrain", 600.0, asked.append, None)
    response.apply(storm(1_000, 3, series=2))
    restored = DriftResponse("retrain", 600.0, asked.append, None)
    restored.load_state_dict(pickle.loads(pickle.dumps(response.state_dict())))
    restored.apply(storm(1_300, 3))
    assert asked == ["drift"]
    restored.apply(storm(1_600, 3))
    assert asked == ["drift", "drift"]


@pytest.mark.parametrize("action", ["reset_state", "alert"])
def test_reset_state_resets_only_the_drifting_series(action: str) -> None:
    reset: list[Any] = []
    response = DriftResponse(action, 600.0, None, reset.append)  # type: ignore[arg-type]
    response.apply([Detection("s3", 3, "input", "adwin", 1.0, 0)])
    assert [r.tolist() for r in reset] == ([[3]] if action == "reset_state" else [])


@pytest.mark.parametrize("action", ["reset_state", "alert"])
def test_a_drift_gets_one_info_line_saying_which_series_and_what_was_done(
    action: str, caplog: pytest.LogCaptureFixture
) -> None:
    response = DriftResponse(action, 600.0, None, lambda slots: None)  # type: ignore[arg-type]
    s = 1_000_000_000
    with caplog.at_level(logging.INFO, logger="streamer.engine.drift_response"):
        response.apply([Detection("s3", 3, "input", "page_hinkley", 4.5, 0)])
        response.apply([Detection("s4", 4, "error", "page_hinkley", 9.0, 10 * s)])  # untold
        response.apply([Detection("s5", 5, "input", "page_hinkley", -3.0, 70 * s)])
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert lines[0].startswith("drift: series s3, signal input, detector page_hinkley, ")
    assert "+4.50 sd, at 1970-01-01T00:00:00+00:00 (1 detection(s)" in lines[0]
    assert f"(on_drift: {action})" in lines[0]
    assert "series s5" in lines[1]
    assert "(2 detection(s) in all since the last such line)" in lines[1]


def test_on_drift_retrain_runs_one_retrain_after_a_level_shift_and_the_error_recovers() -> None:
    import dataclasses
    import json
    import time

    from connectors.codecs import Decoder
    from connectors.memory import MemorySink, MemorySource
    from models.cold_start import ColdStart
    from models.recurrent import RecurrentForecaster
    from models.replay_buffer import ReplayBuffer
    from streamer.engine.pipeline import Pipeline, PipelineSettings
    from streamer.engine.retrain import Retrainer, RetrainSettings
    from streamer.engine.window import WindowBuffer
    from tests.helpers import seasonal

    series, steps, shift_at = 10, 1_200, 700
    values = seasonal(series, steps, season=24, seed=5)
    values[:, shift_at:] += 40.0  # every series jumps at once: a storm of detections
    payloads = [
        json.dumps(
            {"id": f"s{i}", "value": float(values[i, t]), "ts": (1_700_000_000 + t) * 1000}
        ).encode()
        for t in range(steps)
        for i in range(series)
    ]
    lstm = RecurrentForecaster(
        3, hidden_size=16, seed=3, replay=ReplayBuffer(48, 21, 1_000_000), scale_halflife=30
    )
    retrainer = Retrainer(
        lstm,
        RetrainSettings(
            burn_in=24, epochs=30, batch_size=16, learning_rate=1e-2, min_new_steps=1_500
        ),
    )
    monitor = default_monitor("error")
    forecaster = ColdStart(lstm, LastValue(3), min_train_steps=0, compare=False)
    on_drift = DriftResponse(
        "retrain", 3600.0, lambda r: retrainer.request(r, fresh_data=True), forecaster.reset
    )
    sink = MemorySink()
    pipeline = Pipeline(
        sources=[
            (
                MemorySource("s", payloads),
                Decoder(kind="sensor", series_field="id", value_field="value"),
            )
        ],
        window=WindowBuffer(step_ns=NS_PER_S, max_series=series),
        forecaster=forecaster,
        sinks=[sink],
        retrainer=retrainer,
        outcomes=Outcomes(3, window=50),
        drift=monitor,
        on_drift=on_drift,
        settings=PipelineSettings(max_batch=series, max_wait=0.0, checkpoint_every=None),
    )
    try:
        while pipeline.counters.events_in < 400 * series:
            pipeline.step()
        assert retrainer.run_now("schedule") is not None  # trained on the old regime
        retrainer.settings = dataclasses.replace(retrainer.settings, epochs=3)
        while not pipeline.sources[0][0].exhausted:
            pipeline.step()
            while retrainer.running:  # let a retrain land before the stream moves on
                time.sleep(0.02)
                pipeline.step()
    finally:
        pipeline.close()

    assert on_drift.retrains_requested == 1
    assert retrainer.last is not None
    assert retrainer.last.reason == "drift"
    assert sum(retrainer.outcomes[k] for k in ("promoted", "rejected")) == 2
    drifts = [e for o in sink.outputs for e in o.events if e.measurement == "drift"]
    assert drifts
    assert min(e.time_ns for e in drifts) >= (1_700_000_000 + shift_at) * NS_PER_S
    h1: dict[int, list[float]] = {}
    for o in sink.outputs:
        if o.errors is not None:
            for step, h, err in zip(o.errors.steps, o.errors.horizon, o.errors.error, strict=True):
                if h == 1:
                    h1.setdefault(int(step) - 1_700_000_000, []).append(abs(float(err)))

    def mae(start: int, stop: int) -> float:
        return float(np.mean([e for t in range(start, stop) for e in h1.get(t, [])]))

    spike, before = mae(shift_at, shift_at + 50), mae(shift_at - 200, shift_at)
    settled = mae(steps - 200, steps - 1)
    # The jump makes every forecast wrong for a while; by the end (300 to 500 steps after
    # the shift, the retrain having landed) the error is back to what it was before.
    assert spike > 3 * before
    assert settled < 1.05 * before, f"error {settled:.3f} at the end, {before:.3f} before"


def test_the_drift_retrain_cooldown_spans_at_least_100_steps_whatever_the_step() -> None:
    from streamer.config.schema import DriftConfig

    drift = DriftConfig()
    assert drift.cooldown_seconds(step_seconds=1.0) == 600.0  # 10 minutes of 1 s steps
    assert drift.cooldown_seconds(step_seconds=3600.0) == 100 * 3600.0  # 100 hourly steps


# Page-Hinkley on arrays: the same detections as one river detector per series.

PAGE_HINKLEY = {
    "config": PageHinkleyParams(min_instances=30, delta=1.0, threshold=40.0, alpha=1.0),
    "river": PageHinkleyParams(min_instances=30, delta=0.005, threshold=50.0, alpha=1 - 1e-4),
    "fading": PageHinkleyParams(min_instances=5, delta=0.5, threshold=8.0, alpha=0.9),
}


def shifted(series: int, steps: int, rng: np.random.Generator) -> np.ndarray:
    """[series, steps] unit noise around random levels, with one to three level shifts of
    2 to 6 sd up or down at random steps in each series."""
    out = rng.uniform(-5, 5, (series, 1)) + rng.normal(size=(series, steps))
    for i in range(series):
        for at in rng.integers(steps // 3, steps, rng.integers(1, 4)):
            out[i, at:] += rng.choice([-1, 1]) * rng.uniform(2, 6)
    return out


def takes(series: int, steps: int, per_batch: int | str, rng: np.random.Generator) -> list[Any]:
    """Per batch, how many steps each series has in it (all of them in time): `per_batch`
    each, or a ragged number (0 to 16, so some series sit a batch out)."""
    if per_batch == "ragged":
        counts = rng.integers(0, 17, (steps, series))
        ends = np.minimum(np.cumsum(counts, axis=0), steps)
        ends = ends[: int(np.argmax(ends.min(axis=1) == steps)) + 1]
        return list(np.diff(np.vstack([np.zeros(series, int), ends]), axis=0))
    assert isinstance(per_batch, int)
    return [np.full(series, min(per_batch, steps - t)) for t in range(0, steps, per_batch)]


def rows_of(take: np.ndarray, done: np.ndarray, rank_major: bool) -> tuple[np.ndarray, np.ndarray]:
    """(series, step) of a batch's rows: by series then step, as a StepBatch has them, or
    rank by rank, as scored errors come."""
    series = np.repeat(np.arange(len(take)), take)
    steps = done[series] + np.arange(len(series)) - np.repeat(np.cumsum(take) - take, take)
    if rank_major:
        order = np.lexsort((series, steps - done[series]))
        series, steps = series[order], steps[order]
    return series, steps


def fed_in_batches(
    feeds: Any, values: np.ndarray, per_batch: int | str, rng: np.random.Generator
) -> list[tuple[int, int]]:
    """Feed values [series, steps] to array feeds in batches of `takes` (every other one
    rank by rank, every third with slots shared by several series); the (series, step)
    at which they fired."""
    series, steps = values.shape
    names = np.array([f"s{i}" for i in range(series)], dtype=object)
    done, fired = np.zeros(series, dtype=np.int64), list[tuple[int, int]]()
    for b, take in enumerate(takes(series, steps, per_batch, rng)):
        which, at = rows_of(take, done, rank_major=b % 2 == 1)
        slots = which % 7 if b % 3 == 0 else which  # a slot may hold several series
        rows, _ = feeds.update(names[which], slots, values[which, at])
        fired.extend(zip(which[rows].tolist(), at[rows].tolist(), strict=True))
        done += take
    return fired


@pytest.mark.parametrize("params", PAGE_HINKLEY.values(), ids=PAGE_HINKLEY.keys())
@pytest.mark.parametrize("per_batch", [1, 25, "ragged", 1_000])
def test_page_hinkley_on_arrays_fires_where_rivers_does(
    params: PageHinkleyParams, per_batch: int | str
) -> None:
    # Warmup 0: the test sees the values as they come, so river's PageHinkley is fed
    # exactly what the arrays are, and is reset (on its next value) where they re-arm.
    from river import drift

    rng = np.random.default_rng(7)
    series, steps = 150, 1_000
    values = shifted(series, steps, rng)
    expected: list[tuple[int, int]] = []
    detectors = []
    for i in range(series):
        detector = drift.PageHinkley(
            min_instances=params.min_instances,
            delta=params.delta,
            threshold=params.threshold,
            alpha=params.alpha,
        )
        detectors.append(detector)
        for t in range(steps):
            detector.update(float(values[i, t]))  # type: ignore[no-untyped-call]
            if detector.drift_detected:
                expected.append((i, t))
    feeds = PageHinkleyFeeds(params, warmup=0)
    fired = fed_in_batches(feeds, values, per_batch, rng)
    assert sorted(fired) == sorted(expected)
    assert len(expected) > series  # every series fired, most of them more than once
    state = feeds.state_dict()
    for i, detector in enumerate(detectors):  # and the sums agree to the last bit
        if not detector.drift_detected:  # (river resets one that fired on its next value)
            got = [state[key][feeds.ids[f"s{i}"]] for key in ("n", "x_mean", "up", "down")]
            assert got == [
                detector._x_mean.n,
                detector._x_mean.get(),
                detector._sum_increase,
                detector._sum_decrease,
            ]
            got = [state[key][feeds.ids[f"s{i}"]] for key in ("min_up", "max_down")]
            assert got == [detector._min_increase, detector._max_decrease]


def river_monitor(*signals: Signal) -> DriftMonitor:
    """The default monitor but with one river PageHinkley per (signal, series), fed one
    standardised value at a time: what the monitor did before it ran on arrays."""
    detector = DriftConfig().detector
    make = dataclasses.replace(make_detector(detector), arrays=None)
    return DriftMonitor(make, detector.type, signals or ("error", "input"))


Stream = list[tuple[StepBatch, ForecastErrors]]


def drifting_stream(per_batch: int | str, seed: int, series: int = 40, steps: int = 800) -> Stream:
    """Batches of inputs (even series prices, whose log returns shift, odd ones sensors;
    some prices 0, some steps forward-filled) and their scored errors (horizons 1 and
    2, rank by rank, some NaN), whose levels shift after the references are learnt."""
    rng = np.random.default_rng(seed)
    inputs = 20 + shifted(series, steps, rng)
    inputs[::2] = 100 * np.exp(np.cumsum(inputs[::2] - inputs[::2, :1], axis=1) / 1_000)
    inputs[::6, rng.integers(0, steps, 3)] = 0.0
    filled = rng.random((series, steps)) < 0.02
    scaled = np.abs(rng.normal(size=(series, steps)))
    scaled[:, 500:] += np.where(rng.random((series, 1)) < 0.5, 3.0, 0.0)
    scaled[rng.random((series, steps)) < 0.01] = np.nan
    names = np.array([f"s{i}" for i in range(series)], dtype=object)
    kinds = np.array(["price", "sensor"] * (series // 2), dtype=object)
    slot_of = rng.permutation(series)
    out, done = [], np.zeros(series, dtype=np.int64)
    for take in takes(series, steps, per_batch, rng):
        which, at = rows_of(take, done, rank_major=False)
        order = np.argsort(slot_of[which], kind="stable")
        which, at = which[order], at[order]
        batch = StepBatch(
            slots=slot_of[which],
            series=names[which],
            kinds=kinds[which],
            steps=at,
            values=inputs[which, at].reshape(-1, 1),
            filled=filled[which, at],
            reset=at == 0,
            step_ns=STEP,
        )
        ew, et = rows_of(take, done, rank_major=True)
        ew, et = np.repeat(ew, 2), np.repeat(et, 2)
        errors = ForecastErrors(
            series=names[ew],
            slots=slot_of[ew],
            steps=et,
            horizon=np.tile([1, 2], len(ew) // 2),
            error=scaled[ew, et],
            scaled=scaled[ew, et],
            model=np.full(len(ew), "m", dtype=object),
            step_ns=STEP,
        )
        out.append((batch, errors))
        done += take
    return out


def joined(stream: Stream) -> Stream:
    """Each two batches in one, as the pipeline joins a batch and the steps it closed
    for idle series: a series' rows then come in two runs."""
    out = []
    for (a, ea), (b, eb) in zip(stream[::2], stream[1::2], strict=False):
        errors = ForecastErrors(
            **{
                f.name: np.concatenate([getattr(ea, f.name), getattr(eb, f.name)])
                for f in dataclasses.fields(ForecastErrors)
                if f.name != "step_ns"
            },
            step_ns=STEP,
        )
        out.append((concat_batches([a, b]), errors))
    return out


@pytest.mark.parametrize("per_batch", [1, 8, "ragged", 1_000])  # 8: two batches in one
def test_the_monitor_on_arrays_detects_what_one_river_detector_per_series_does(
    per_batch: int | str,
) -> None:
    stream = drifting_stream(per_batch, seed=11)
    if per_batch == 8:
        stream = joined(stream)
    arrays, river = default_monitor(), river_monitor()
    got = [d for batch, errors in stream for d in arrays.update(batch, errors)]
    expected = [d for batch, errors in stream for d in river.update(batch, errors)]
    assert got == expected  # the same series, rows, order and statistics
    assert {d.signal for d in expected} == {"input", "error"}
    assert len({d.series for d in expected}) > 20
    assert arrays.last_price == river.last_price
    assert arrays.detections == river.detections


def per_row_inputs(batch: StepBatch, last: dict[str, float]) -> np.ndarray:
    """The monitor's input values as it took them before, one price row at a time."""
    real = ~batch.filled
    values, out = batch.target[real], batch.target[real].copy()
    for i, (name, kind) in enumerate(zip(batch.series[real], batch.kinds[real], strict=True)):
        if kind == "price":
            previous, value = last.get(name), float(values[i])
            ok = previous is not None and previous > 0 and value > 0
            out[i] = math.log(value / previous) if ok else math.nan  # type: ignore[operator]
            last[name] = value
    return out


@pytest.mark.parametrize("per_batch", [1, "ragged", "joined"])
def test_input_log_returns_are_what_one_price_row_at_a_time_gave(per_batch: str | int) -> None:
    monitor, last = default_monitor("input"), dict[str, float]()
    stream = drifting_stream(3 if per_batch == "joined" else per_batch, seed=12, steps=300)
    for batch, _ in joined(stream) if per_batch == "joined" else stream:
        got = monitor._inputs(batch, ~batch.filled, batch.series[~batch.filled])
        np.testing.assert_array_equal(got, per_row_inputs(batch, last))
    assert monitor.last_price == last


@pytest.mark.parametrize("per_batch", [1, "ragged"])
def test_the_monitor_on_arrays_restored_mid_stream_detects_what_an_uninterrupted_one_does(
    per_batch: int | str,
) -> None:
    stream = drifting_stream(per_batch, seed=13)
    whole = default_monitor()
    expected = [d for batch, errors in stream for d in whole.update(batch, errors)]
    for cut in (len(stream) // 4, len(stream) * 2 // 3):  # feeds learning, and re-arming
        first = default_monitor()
        got = [d for batch, errors in stream[:cut] for d in first.update(batch, errors)]
        blob = pickle.dumps(first.state_dict())
        assert b"streamer" not in blob  # plain values and numpy arrays, no classes of ours
        restored = default_monitor()
        restored.load_state_dict(pickle.loads(blob))
        got += [d for batch, errors in stream[cut:] for d in restored.update(batch, errors)]
        assert got == expected


def test_a_checkpoint_of_river_detectors_per_series_is_converted_and_detects_the_same(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = drifting_stream("ragged", seed=14)
    river = river_monitor()
    expected = [d for batch, errors in stream for d in river.update(batch, errors)]
    before = river_monitor()
    cut = len(stream) // 2
    got = [d for batch, errors in stream[:cut] for d in before.update(batch, errors)]
    assert any(f.warm is not None for f in before.feeds["input"].feeds.values())  # type: ignore[attr-defined]
    monkeypatch.setattr(_Feed, "__module__", "streamer.engine.drift")  # where it was
    legacy = {  # as checkpoints held them: one pickled dict of every (signal, series)
        "feeds": pickle.dumps(
            {
                (signal, name): feed
                for signal, feeds in before.feeds.items()
                for name, feed in feeds.feeds.items()  # type: ignore[attr-defined]
            }
        ),
        "last_price": before.last_price,
        "detections": dict(before.detections),
    }
    assert b"river_feeds" not in legacy["feeds"]
    restored = default_monitor()
    with caplog.at_level(logging.WARNING, logger="streamer.engine.drift"):
        restored.load_state_dict(legacy)
    assert "re-learn" not in caplog.text
    got += [d for batch, errors in stream[cut:] for d in restored.update(batch, errors)]
    assert got == expected


def test_feeds_of_a_checkpoint_that_cannot_be_converted_re_learn_their_reference(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = drifting_stream(8, seed=15, series=4, steps=300)
    adwin = DriftMonitor(make_detector(AdwinDetector(type="adwin")), "adwin")
    for batch, errors in stream:
        adwin.update(batch, errors)
    legacy = {
        "feeds": pickle.dumps(
            {(s, n): f for s, feeds in adwin.feeds.items() for n, f in feeds.feeds.items()}  # type: ignore[attr-defined]
        ),
        "last_price": adwin.last_price,
        "detections": {},
    }
    monitor = default_monitor()
    with caplog.at_level(logging.WARNING, logger="streamer.engine.drift"):
        monitor.load_state_dict(legacy)
    assert "8 of the checkpoint's 8 drift feeds are not of a page_hinkley detector" in caplog.text
    assert monitor.state_dict()["signal_feeds"]["input"]["names"] == []
