"""Small builders shared by unit and integration tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from connectors.base import Output
from streamer.core.records import Forecasts, StepBatch

STEP = 1_000_000_000
T = 1_790_000_000
EXAMPLE = Path(__file__).parents[1] / "config" / "streamer.example.yaml"


def example_with_streams() -> dict[str, Any]:
    """The example config with its commented `streams:` block in place of `sources`."""
    text = EXAMPLE.read_text()
    block = []
    for line in text[text.index("# streams:\n") :].splitlines():
        if not line.startswith("#"):
            break
        block.append(line[2:])
    example: dict[str, Any] = yaml.safe_load(text)
    del example["sources"]
    example.update(yaml.safe_load("\n".join(block)))
    return example


def seasonal(series: int, steps: int, season: int, seed: int = 0) -> np.ndarray:
    """[series, steps]: levels, trends, daily-like cycles and noise that differ per series."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps)
    level = rng.uniform(50, 150, (series, 1))
    slope = rng.uniform(-0.05, 0.05, (series, 1))
    amplitude = rng.uniform(5, 15, (series, 1))
    phase = rng.uniform(0, 2 * np.pi, (series, 1))
    noise = rng.normal(0, 1, (series, steps)) * amplitude * 0.15
    return level + slope * t + amplitude * np.sin(2 * np.pi * t / season + phase) + noise


def step_batch(
    values: np.ndarray, step: int, reset: bool = False, kind: str = "sensor"
) -> StepBatch:
    """One closed step (number `step`) of every series, slot i = series i."""
    n = len(values)
    return StepBatch(
        slots=np.arange(n),
        series=np.array([f"s{i}" for i in range(n)], dtype=object),
        kinds=np.full(n, kind, dtype=object),
        steps=np.full(n, step, dtype=np.int64),
        values=np.asarray(values, dtype=float).reshape(n, 1),
        filled=np.zeros(n, bool),
        reset=np.full(n, reset),
        step_ns=STEP,
    )


def output(series: list[str], yhat: list[list[float]]) -> Output:
    """One closed step per series at time T, and its forecasts (yhat per horizon)."""
    n = len(series)
    names = np.array(series, dtype=object)
    steps = np.full(n, T, dtype=np.int64)
    batch = StepBatch(
        slots=np.arange(n),
        series=names,
        kinds=np.array(["price"] * n, dtype=object),
        steps=steps,
        values=np.array([[row[0]] for row in yhat]),
        filled=np.zeros(n, bool),
        reset=np.zeros(n, bool),
        step_ns=STEP,
    )
    return Output(batch, Forecasts(names, steps, np.array(yhat), "last_value", STEP))
