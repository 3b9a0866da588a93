"""The loop end to end with in-memory edges: bad input, restarts, failing sinks."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from connectors.base import Output
from connectors.codecs import Decoder
from connectors.memory import MemoryDeadLetter, MemorySink, MemorySource
from models.base import Forecaster
from models.baseline import SeasonalNaive
from models.cold_start import ColdStart
from models.outcomes import Outcomes
from models.recurrent import RecurrentForecaster
from models.replay_buffer import ReplayBuffer
from streamer.config.drift import make_detector
from streamer.config.schema import AdwinDetector
from streamer.core.errors import SinkError, SinkRejectedError
from streamer.core.records import NS_PER_S
from streamer.engine.checkpoint import CheckpointStore
from streamer.engine.drift import DriftMonitor
from streamer.engine.pipeline import Pipeline, PipelineSettings
from streamer.engine.window import WindowBuffer

T0 = 1_700_000_000  # seconds
NOW = T0 + 10_000


def tick(symbol: str, second: int, price: float) -> bytes:
    return json.dumps({"symbol": symbol, "price": price, "ts": (T0 + second) * 1000}).encode()


def ticks(n_symbols: int = 5, seconds: int = 60, shift_at: int | None = None) -> list[bytes]:
    """Values around 100; from second `shift_at` on, around 120 (drift)."""
    rng = np.random.default_rng(0)
    return [
        tick(
            f"S{k}",
            t,
            round(
                100 + float(rng.normal()) + (20 if shift_at is not None and t >= shift_at else 0), 3
            ),
        )
        for t in range(seconds)
        for k in range(n_symbols)
    ]


FORECASTERS: dict[str, Callable[[], Forecaster]] = {
    "seasonal_naive": lambda: SeasonalNaive(horizon=3, season_length=4),
    # Served from the first step; its state, scaler and replay buffer must all restore.
    "lstm": lambda: ColdStart(
        RecurrentForecaster(3, hidden_size=8, replay=ReplayBuffer(8, 4, 1000)),
        SeasonalNaive(horizon=3, season_length=4),
        min_train_steps=0,
    ),
}


def pipeline(
    payloads: list[bytes],
    sink: Any = None,
    dead_letter: MemoryDeadLetter | None = None,
    checkpoints: CheckpointStore | None = None,
    max_batch: int = 7,
    model: str = "seasonal_naive",
) -> Pipeline:
    decoder = Decoder(kind="sensor", series_field="symbol", value_field="price")
    return Pipeline(
        sources=[(MemorySource("ticks", payloads), decoder)],
        window=WindowBuffer(step_ns=NS_PER_S, max_series=100, spill=checkpoints),
        forecaster=FORECASTERS[model](),
        outcomes=Outcomes(horizon=3, window=10),
        drift=DriftMonitor(make_detector(AdwinDetector(type="adwin", delta=0.5)), "adwin"),
        sinks=[sink if sink is not None else MemorySink()],
        dead_letter=dead_letter,
        checkpoints=checkpoints,
        settings=PipelineSettings(
            max_batch=max_batch,
            max_wait=0,
            checkpoint_every=None,
            stop_at_end=True,
            sink_retry_wait=0.001,
        ),
        clock=lambda: float(NOW),
    )


Key = tuple[str, str, int, int]


def points(outputs: list[Output]) -> dict[Key, tuple[float, ...]]:
    """Every point written (observed, forecast with its interval, forecast_error, drift),
    by its InfluxDB key; fails on a key written with two values."""
    out: dict[Key, tuple[float, ...]] = {}

    def put(key: Key, *value: float) -> None:
        value = tuple(np.nan_to_num(value, nan=-1.0).tolist())  # NaN: no interval yet
        assert out.setdefault(key, value) == value, f"{key} written as {out[key]} and {value}"

    for o in outputs:
        for s, t, v in zip(o.observed.series, o.observed.times_ns, o.observed.target, strict=True):
            put(("observed", str(s), 0, int(t)), float(v))
        f = o.forecasts
        targets = f.target_times_ns()
        lower = np.full(f.yhat.shape, np.nan) if f.lower is None else f.lower
        upper = np.full(f.yhat.shape, np.nan) if f.upper is None else f.upper
        for i, s in enumerate(f.series):
            for h in range(f.horizon):
                key = ("forecast", str(s), h + 1, int(targets[i, h]))
                put(key, float(f.yhat[i, h]), float(lower[i, h]), float(upper[i, h]))
        e = o.errors
        if e is not None:
            for s, h, t, err in zip(e.series, e.horizon, e.times_ns, e.error, strict=True):
                put(("forecast_error", str(s), int(h), int(t)), float(err))
        for event in o.events:
            put((event.measurement, event.tags.get("series", ""), 0, event.time_ns), 1.0)
    return out


def test_every_event_becomes_steps_and_forecasts() -> None:
    sink = MemorySink()
    p = pipeline(ticks(n_symbols=5, seconds=60), sink)
    counters = p.run(threading.Event())
    assert counters.events_in == 300
    assert counters.steps_closed == 300  # stop_at_end closes the last open steps too
    assert counters.forecasts_out == 900
    written = points(sink.outputs)
    assert sum(1 for k in written if k[0] == "forecast") == 900


def test_bad_input_goes_to_the_dead_letter_and_the_good_input_around_it_is_processed() -> None:
    good = ticks(n_symbols=2, seconds=10)
    bad = [
        b"{not json",
        b'{"price": 1, "ts": 1700000000000}',
        b'{"symbol": "S0", "price": "abc", "ts": 1700000000000}',
        b'{"symbol": "S0", "price": NaN, "ts": 1700000000000}',
        b'{"symbol": "S0", "price": 1, "ts": 1000}',
        tick("S0", 10**7, 1.0),  # far in the future
    ]
    payloads = good[:10] + bad + good[10:] + [tick("S0", 0, 5.0)]  # the last one is late
    dead = MemoryDeadLetter()
    sink = MemorySink()
    counters = pipeline(payloads, sink, dead).run(threading.Event())
    reasons = [r.reason for r in dead.rejections]
    assert reasons == [
        "malformed",
        "missing_field",
        "non_numeric",
        "non_finite",
        "bad_time",
        "bad_time",
        "late",
    ]
    assert [r.raw for r in dead.rejections] == [*bad, tick("S0", 0, 5.0)]
    assert counters.steps_closed == 20  # all 20 good ticks
    assert counters.rejected_total == 7


@pytest.mark.parametrize("model", sorted(FORECASTERS))
def test_restart_from_a_checkpoint_gives_the_output_of_an_uninterrupted_run(
    tmp_path: Path, model: str
) -> None:
    payloads = ticks(n_symbols=4, seconds=40, shift_at=20)
    clean = MemorySink()
    pipeline(payloads, clean, model=model).run(threading.Event())

    # A run that checkpoints after a while, writes more, then dies without a checkpoint.
    first_sink = MemorySink()
    store = CheckpointStore(tmp_path / "c.db")
    first = pipeline(payloads, first_sink, checkpoints=store, model=model)
    first.restore()
    for _ in range(6):
        first.step()
    first.checkpoint()
    for _ in range(5):
        first.step()  # output written, never checkpointed: a crash here

    second_sink = MemorySink()
    store = CheckpointStore(tmp_path / "c.db")
    second = pipeline(payloads, second_sink, checkpoints=store, model=model)
    assert second.restore()
    second.run(threading.Event())

    # Replayed points overwrite themselves with the same values; none is missing.
    # Errors, intervals and drift detections too: their state was in the checkpoint.
    expected = points(clean.outputs)
    assert points(first_sink.outputs + second_sink.outputs) == expected
    assert {key[0] for key in expected} == {"observed", "forecast", "forecast_error", "drift"}


class FlakySink(MemorySink):
    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def write(self, output: Output) -> None:
        if self.failures:
            self.failures -= 1
            raise SinkError("server unavailable")
        super().write(output)


def test_a_failing_sink_is_retried_and_nothing_is_lost() -> None:
    sink = FlakySink(failures=3)
    pipeline(ticks(seconds=20), sink).run(threading.Event())
    assert len(points(sink.outputs)) == len(points(_clean(ticks(seconds=20))))


def _clean(payloads: list[bytes]) -> list[Output]:
    sink = MemorySink()
    pipeline(payloads, sink).run(threading.Event())
    return sink.outputs


class RefusingSink(MemorySink):
    def write(self, output: Output) -> None:
        raise SinkRejectedError(
            "400 Bad Request: field type conflict", ["bad line 1", "bad line 2"]
        )


def test_a_refused_write_goes_to_the_dead_letter_with_the_server_message() -> None:
    dead = MemoryDeadLetter()
    pipeline(ticks(n_symbols=1, seconds=3), RefusingSink(), dead).run(threading.Event())
    assert {r.reason for r in dead.rejections} == {"sink_rejected"}
    assert dead.rejections[0].detail == "400 Bad Request: field type conflict"
    assert dead.rejections[0].raw == b"bad line 1"


@pytest.mark.parametrize("max_batch", [1, 3, 1000])
def test_batch_size_does_not_change_the_output(max_batch: int) -> None:
    sink = MemorySink()
    pipeline(ticks(seconds=30), sink, max_batch=max_batch).run(threading.Event())
    assert points(sink.outputs) == points(_clean(ticks(seconds=30)))


class SwitchableSource(MemorySource):
    """A source whose readiness (connected, partitions assigned) the test controls."""

    is_ready = True

    @property
    def ready(self) -> bool:
        return self.is_ready


class Clock:
    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


def idle_pipeline(
    source: SwitchableSource,
    clock: Clock,
    sink: MemorySink,
    checkpoints: CheckpointStore | None = None,
) -> Pipeline:
    decoder = Decoder(kind="price", series_field="symbol", value_field="price")
    return Pipeline(
        sources=[(source, decoder)],
        window=WindowBuffer(step_ns=NS_PER_S, idle_close_after=30.0, spill=checkpoints),
        forecaster=SeasonalNaive(horizon=1, season_length=2),
        sinks=[sink],
        checkpoints=checkpoints,
        settings=PipelineSettings(max_wait=0, checkpoint_every=None),
        clock=clock,
    )


def test_a_quiet_series_closes_its_step_after_idle_close_after() -> None:
    clock, sink = Clock(), MemorySink()
    p = idle_pipeline(SwitchableSource("ticks", [tick("S0", 0, 1.0)]), clock, sink)
    p.step()
    clock.now += 29
    p.step()
    p.writer.drain()
    assert points(sink.outputs) == {}
    clock.now += 2
    p.step()
    p.writer.drain()
    assert ("observed", "S0", 0, T0 * NS_PER_S) in points(sink.outputs)


def test_time_when_a_source_is_not_reading_does_not_make_series_idle(tmp_path: Path) -> None:
    clock, sink = Clock(), MemorySink()
    source = SwitchableSource("ticks", [tick("S0", 0, 1.0)])
    store = CheckpointStore(tmp_path / "c.db")
    p = idle_pipeline(source, clock, sink, store)
    p.step()
    clock.now += 20
    p.step()
    source.is_ready = False  # say, waiting for partitions after a rebalance
    for _ in range(10):
        clock.now += 60
        p.step()
    p.writer.drain()
    assert points(sink.outputs) == {}
    p.checkpoint()

    # A restart an hour later: the downtime does not count either.
    clock.now += 3600
    later = MemorySink()
    restored = idle_pipeline(
        SwitchableSource("ticks", [tick("S0", 0, 1.0)]),
        clock,
        later,
        CheckpointStore(tmp_path / "c.db"),
    )
    assert restored.restore()
    restored.step()
    restored.writer.drain()
    assert points(later.outputs) == {}
    clock.now += 10  # 20 + 10 seconds of ready time in all
    restored.step()
    restored.writer.drain()
    assert ("observed", "S0", 0, T0 * NS_PER_S) in points(later.outputs)


def test_rejections_are_logged_at_most_once_per_reason_per_period(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    bad = [b"{not json"] * 50 + [b'{"symbol": "S0", "price": "x", "ts": 1700000000000}'] * 50
    source = SwitchableSource("ticks", bad)
    p = idle_pipeline(source, clock, MemorySink())
    p.settings = PipelineSettings(
        max_batch=10, max_wait=0, checkpoint_every=None, rejected_log_every=10.0
    )
    with caplog.at_level("WARNING", logger="streamer.engine.pipeline"):
        for _ in range(5):
            p.step()  # 50 malformed records within the period: one line
        clock.now += 10
        for _ in range(5):
            p.step()  # 50 non-numeric ones, 10 s later: one line each reason that occurred
    lines = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert len(lines) == 2
    assert "as malformed" in lines[0]
    assert "as non_numeric" in lines[1]
    assert p.counters.rejected == {"malformed": 50, "non_numeric": 50}


def test_without_a_checkpoint_store_positions_are_still_committed_regularly() -> None:
    clock = Clock()
    source = SwitchableSource("ticks", ticks(n_symbols=2, seconds=5))
    p = idle_pipeline(source, clock, MemorySink())
    p.settings = PipelineSettings(max_batch=4, max_wait=0, checkpoint_every=1.0)
    p.step()
    assert source.committed == {}
    clock.now += 1
    p.step()
    assert source.committed == {"": 8}  # everything read so far, its outputs written


def test_a_step_whose_sum_a_float_cannot_hold_is_dead_lettered_not_dropped() -> None:
    payloads = [tick("S0", s, v) for s, v in [(0, 1.0), (1, 1.5e308), (1, 1.5e308), (2, 2.0)]]
    payloads.append(tick("S0", 3, 3.0))
    dead, sink = MemoryDeadLetter(), MemorySink()
    p = pipeline(payloads, sink, dead)
    p.window = WindowBuffer(step_ns=NS_PER_S, max_series=100, aggregation="sum")
    p.run(threading.Event())
    [rejection] = dead.rejections
    assert rejection.reason == "non_finite"
    assert "the sum of 2 values of series 'S0'" in rejection.detail
    assert json.loads(rejection.raw)["events"] == 2
    observed = {
        k[3] // NS_PER_S - T0: v for k, v in points(sink.outputs).items() if k[0] == "observed"
    }
    # The step is left empty: forward-filled as a step without events would be.
    assert observed == {0: (1.0,), 1: (0.0,), 2: (2.0,), 3: (3.0,)}
