"""Drift detection: a level shift in the inputs and a variance change in the errors are
found soon after they happen, and rarely before; a storm of detections asks for one
retrain."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from models.baseline import LastValue
from models.outcomes import Outcomes
from streamer.config import AdwinDetector
from streamer.drift import Detection, DriftMonitor, DriftResponse, make_detector
from streamer.records import NS_PER_S
from tests.helpers import step_batch

SERIES, CHANGE, AFTER = 8, 5_000, 1_000


def detections_by_series(values: np.ndarray, signal: str) -> dict[int, list[int]]:
    """Run values [series, steps] through last_value forecasts, errors and a monitor;
    the steps at which each series' detector fired."""
    monitor = DriftMonitor(make_detector(AdwinDetector(type="adwin")), "adwin", (signal,))  # type: ignore[arg-type]
    model, outcomes = LastValue(1), Outcomes(1, window=50)
    fired: dict[int, list[int]] = {i: [] for i in range(len(values))}
    for t in range(values.shape[1]):
        batch = step_batch(values[:, t], t, reset=t == 0)
        errors, _ = outcomes.observe(batch, model.step(batch))
        for d in monitor.update(batch, errors):
            fired[int(d.series[1:])].append(t)
    return fired


def assert_found_soon_and_rarely_before(fired: dict[int, list[int]], delay: int) -> None:
    for series, steps in fired.items():
        before = [t for t in steps if t < CHANGE]
        after = [t for t in steps if t >= CHANGE]
        assert len(before) <= 1, f"series {series}: {len(before)} false alarms at {before}"
        assert after, f"series {series}: the change was never detected"
        assert after[0] - CHANGE <= delay, f"series {series}: found {after[0] - CHANGE} steps late"


def test_a_level_shift_in_the_inputs_is_found_soon_after_it_happens() -> None:
    rng = np.random.default_rng(1)
    values = 50 + rng.normal(0, 1, (SERIES, CHANGE + AFTER))
    values[:, CHANGE:] += 2.0
    assert_found_soon_and_rarely_before(detections_by_series(values, "input"), delay=100)


def test_a_variance_change_is_found_in_the_forecast_errors() -> None:
    rng = np.random.default_rng(2)
    noise = rng.normal(0, 1, (SERIES, CHANGE + AFTER))
    noise[:, CHANGE:] *= 3.0  # the same mean: only the spread, so the errors, grow
    values = 50 + noise
    assert_found_soon_and_rarely_before(detections_by_series(values, "error"), delay=150)


def test_a_storm_of_detections_asks_for_one_retrain_per_cooldown() -> None:
    asked: list[str] = []
    response = DriftResponse("retrain", 600.0, asked.append, None)
    storm = [
        Detection(f"s{i}", i, "error", "adwin", 1.0, (1_000 + t) * NS_PER_S)
        for t in range(0, 300, 3)
        for i in range(20)
    ]
    for d in storm:
        response.apply([d])
    assert asked == ["drift"]  # 2,000 detections within 300 s of event time
    response.apply([Detection("s0", 0, "error", "adwin", 1.0, (1_000 + 600) * NS_PER_S)])
    assert asked == ["drift", "drift"]


@pytest.mark.parametrize("action", ["reset_state", "alert"])
def test_reset_state_resets_only_the_drifting_series(action: str) -> None:
    reset: list[Any] = []
    response = DriftResponse(action, 600.0, None, reset.append)  # type: ignore[arg-type]
    response.apply([Detection("s3", 3, "input", "adwin", 1.0, 0)])
    assert [r.tolist() for r in reset] == ([[3]] if action == "reset_state" else [])
