"""The demo producer's streams look like the real thing and decode without rejections."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from connectors.codecs import Decoder
from connectors.demo_produce import DAY_S, Market, Plant, produce

REPO = Path(__file__).parents[2]
T0_MS = 1_790_000_000_000 // (DAY_S * 1000) * DAY_S * 1000  # a midnight


def test_prices_walk_with_an_intraday_shape_and_regime_changes() -> None:
    market = Market(symbols=30, seed=1)
    step = 60.0
    prices, regimes, days = [], [], []
    for i in range(5 * 1440):  # five days of minutes
        at = T0_MS + int(i * step * 1000)
        ticks = market.ticks(at, step)
        prices.append([json.loads(p)["price"] for _, p in ticks])
        regimes.append(market.volatile.copy())
        days.append((at / 1000 % DAY_S) / DAY_S)
    p = np.array(prices)
    assert (p > 0).all()
    moves = np.abs(np.diff(np.log(p), axis=0))
    day = np.array(days[1:])
    busy = moves[(np.abs(day - 0.375) < 0.01) | (np.abs(day - 0.667) < 0.01)].mean()
    quiet = moves[(np.abs(day - 0.52) < 0.05) | (np.abs(day - 0.1) < 0.05)].mean()
    assert busy > 1.3 * quiet  # the open and the close move more than the middle
    switches = (np.diff(np.array(regimes).astype(int), axis=0) != 0).sum(axis=0)
    assert 1 <= switches.mean() <= 5  # calm and volatile spells of a day or two


def test_sensors_cycle_daily_drift_slowly_and_drop_out() -> None:
    plant = Plant(sensors=20, seed=2)
    step = 60.0
    seen = np.zeros((3 * 1440, 20), dtype=bool)
    temperature = np.full((3 * 1440, 20), np.nan)
    for i in range(3 * 1440):
        for key, payload in plant.readings(T0_MS + int(i * step * 1000), step):
            k = int(key.split("-")[1])
            seen[i, k] = True
            temperature[i, k] = json.loads(payload)["values"]["temperature"]
    assert 0.95 < seen.mean() < 1.0  # dropouts, but rare
    angle = 2 * np.pi * np.arange(3 * 1440) * step / DAY_S
    for k in range(20):
        ok = seen[:, k]
        best = max(
            abs(np.corrcoef(temperature[ok, k], np.sin(angle[ok] + shift))[0, 1])
            for shift in np.linspace(0, 2 * np.pi, 16)
        )
        assert best > 0.9, k


def test_every_event_decodes_with_the_default_fields() -> None:
    sent: list[tuple[str, str, bytes]] = []
    clock = [1_790_000_000.0]

    def sleep(seconds: float) -> None:
        clock[0] += max(seconds, 0.001)

    count = produce(
        lambda stream, key, payload: sent.append((stream, key, payload)),
        symbols=5,
        sensors=5,
        step_s=1.0,
        duration_s=30.0,
        clock=lambda: clock[0],
        sleep=sleep,
    )
    assert count == len(sent) > 250
    ticks = Decoder(kind="price", series_field="symbol", value_field="price")
    readings = Decoder(
        kind="sensor", series_field="sensor_id", value_field="value", values_field="values"
    )
    now_ns = int(clock[0] * 1e9)
    for stream, key, payload in sent:
        decoder = ticks if stream == "ticks" else readings
        observations, rejections = decoder.decode(payload, now_ns)
        assert not rejections, rejections
        assert {o.series.split("/")[0] for o in observations} == {key}


def test_demo_produce_names_a_bad_stream_list() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "streamer", "demo-produce", "--kafka", "127.0.0.1:1",
         "--kafka-streams", "ticks,trades"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--kafka-streams: 'ticks,trades' is not a list of ticks and/or readings" in done.stderr
