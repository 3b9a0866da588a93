"""Series moved between pipelines mid-stream carry on exactly where they stood."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import numpy as np
import pytest

from connectors.codecs import Decoder
from connectors.memory import MemorySink, MemorySource
from models.base import Forecaster
from models.baseline import LastValue, SeasonalNaive
from models.cold_start import ColdStart
from models.ensemble import Ensemble
from models.outcomes import Outcomes
from models.recurrent import RecurrentForecaster
from models.replay_buffer import ReplayBuffer
from models.river_models import holt_winters
from streamer.config.drift import make_detector
from streamer.config.schema import AdwinDetector, KswinDetector, PageHinkleyDetector
from streamer.config.schema_drift import Detector
from streamer.core.records import NS_PER_S
from streamer.engine.drift import DriftMonitor
from streamer.engine.pipeline import Pipeline, PipelineSettings
from streamer.engine.window import WindowBuffer
from tests.unit.test_pipeline import points

T0 = 1_700_000_000
H = 3

FORECASTERS: dict[str, Callable[[], Forecaster]] = {
    "seasonal_naive": lambda: SeasonalNaive(horizon=H, season_length=4),
    # The net serves from the first step: its hidden state, scale, lags and recent steps
    # must all move with each series.
    # (Without the lag highway: its weights are fitted online on every series a
    # process holds, so they are not per-series state.)
    "lstm": lambda: ColdStart(
        RecurrentForecaster(H, hidden_size=8, replay=ReplayBuffer(8, 4, 1000)),
        SeasonalNaive(horizon=H, season_length=4),
        min_train_steps=0,
        compare=False,
    ),
    "gru_returns": lambda: RecurrentForecaster(H, cell="gru", hidden_size=4, returns=True),
    "ensemble": lambda: Ensemble(
        {
            "lstm": RecurrentForecaster(H, hidden_size=4),
            "last_value": LastValue(H),
            "seasonal_naive": SeasonalNaive(horizon=H, season_length=4),
        }
    ),
    "holtwinters": lambda: holt_winters(H, season=4),
}


def payloads(symbols: list[str], seconds: range) -> list[bytes]:
    rng = np.random.default_rng(len(symbols) * 1000 + seconds.start)
    out = []
    for t in seconds:
        for k, symbol in enumerate(symbols):
            level = 100 + 10 * k + (15 if t >= 40 and k % 2 else 0)  # drift in some
            price = round(level + float(rng.normal()), 3)
            out.append(
                json.dumps({"symbol": symbol, "price": price, "ts": (T0 + t) * 1000}).encode()
            )
    return out


def pipeline(model: str, drift: str, sink: MemorySink, events: list[bytes]) -> Pipeline:
    detector: Detector = PageHinkleyDetector(type="page_hinkley", threshold=5.0)
    if drift == "adwin":
        detector = AdwinDetector(type="adwin", delta=0.5)
    elif drift == "kswin":
        detector = KswinDetector(type="kswin", alpha=0.05, window_size=20, stat_size=8)
    return Pipeline(
        sources=[
            (
                MemorySource("ticks", events),
                Decoder(kind="price", series_field="symbol", value_field="price"),
            )
        ],
        window=WindowBuffer(step_ns=NS_PER_S, max_series=100, allowed_lateness_ns=NS_PER_S),
        forecaster=FORECASTERS[model](),
        outcomes=Outcomes(horizon=H, window=10),
        drift=DriftMonitor(make_detector(detector), drift),
        sinks=[sink],
        settings=PipelineSettings(max_batch=7, max_wait=0, checkpoint_every=None, stop_at_end=True),
        clock=lambda: float(T0 + 10_000),
    )


@pytest.mark.parametrize("drift", ["adwin", "kswin", "page_hinkley"])
@pytest.mark.parametrize("model", sorted(FORECASTERS))
def test_series_moved_to_another_pipeline_write_what_one_pipeline_writes(
    model: str, drift: str
) -> None:
    symbols = [f"S{k}" for k in range(6)]
    stay, move = symbols[:3], symbols[3:]
    before, after = range(0, 30), range(30, 60)

    whole = MemorySink()
    pipeline(model, drift, whole, payloads(symbols, before) + payloads(symbols, after)).run(
        threading.Event()
    )

    first_sink, second_sink = MemorySink(), MemorySink()
    first = pipeline(model, drift, first_sink, payloads(symbols, before))
    source = first.sources[0][0]
    assert isinstance(source, MemorySource)
    while not source.exhausted:
        first.step()
    records = first.series.take(move, first.idle_clock)
    first.series.drop(move)
    assert first.window.live_series == len(stay)

    second = pipeline(model, drift, second_sink, [])
    second.series.put(move, records, second.idle_clock)
    second.sources[0][0].payloads.extend(  # type: ignore[attr-defined]
        p for p in payloads(symbols, after) if json.loads(p)["symbol"] in move
    )
    source.payloads.extend(p for p in payloads(symbols, after) if json.loads(p)["symbol"] in stay)
    first.run(threading.Event())
    second.run(threading.Event())

    expected = points(whole.outputs)
    got = points(first_sink.outputs + second_sink.outputs)
    assert got.keys() == expected.keys()
    differ = {k: (got[k], expected[k]) for k in expected if not np.allclose(got[k], expected[k])}
    assert not differ, (
        f"{len(differ)} of {len(expected)} points differ, e.g. {next(iter(differ.items()))}"
    )
    # The second pipeline wrote the moved series, and only those.
    assert {key[1] for key in points(second_sink.outputs) if key[0] == "forecast"} == set(move)


def test_a_record_from_a_replica_with_other_settings_is_refused() -> None:
    events = payloads(["S0"], range(0, 10))
    first = pipeline("lstm", "page_hinkley", MemorySink(), events)
    first.run(threading.Event())
    records = first.series.take(["S0"], first.idle_clock)
    other = pipeline("seasonal_naive", "page_hinkley", MemorySink(), [])
    with pytest.raises(ValueError, match="other model, window, interval or drift settings"):
        other.series.put(["S0"], records, other.idle_clock)
    assert other.window.live_series == 0
