"""Forecast accuracy: forecasts matched with the values that later arrived, per horizon.

A forecast issued at step t for t+h is scored against the value observed at step t+h,
and only where that step had a real value (a forward-filled step arrived as no value).
MASE scales each series' errors by the in-sample mean absolute error of the seasonal
naive one-step forecast, |y[t] - y[t-m]| over the training steps (Hyndman & Koehler).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]


@dataclass(frozen=True)
class Actuals:
    """The observed steps: one row per (series, step) with a real value."""

    series: NDArray[np.object_]
    steps: I64
    values: F64


@dataclass(frozen=True)
class Issued:
    """Forecasts: row i was issued for `series[i]` at `steps[i]`, yhat [n, H], with its
    interval where one was known (NaN where not)."""

    series: NDArray[np.object_]
    steps: I64
    yhat: F64
    lower: F64 | None = None
    upper: F64 | None = None


class _Index:
    """The actual values, sorted by (series, step), to look many (series, step) pairs
    up at once: series are coded once, each lookup is one binary search."""

    def __init__(self, actual: Actuals) -> None:
        names, codes = np.unique(actual.series.astype(str), return_inverse=True)
        self.codes = {str(n): i for i, n in enumerate(names)}
        self.low = int(actual.steps.min(initial=0))
        self.span = int(actual.steps.max(initial=0)) - self.low + 1
        keys = codes.astype(np.int64) * self.span + (actual.steps - self.low)
        order = np.argsort(keys, kind="stable")
        self.keys, self.values = keys[order], actual.values[order]

    def code(self, series: NDArray[np.object_]) -> I64:
        """Each series' code; -1 for a series without actual values."""
        names, inverse = np.unique(series.astype(str), return_inverse=True)
        known = np.array([self.codes.get(str(n), -1) for n in names], dtype=np.int64)
        return known[inverse] if len(series) else np.empty(0, np.int64)

    def lookup(self, codes: I64, steps: I64) -> tuple[F64, NDArray[np.bool_]]:
        """Actual values at (series code, step) pairs, and whether each exists."""
        inside = (codes >= 0) & (steps >= self.low) & (steps < self.low + self.span)
        query = codes * self.span + (steps - self.low)
        if not len(self.keys):
            return np.full(len(query), np.nan), np.zeros(len(query), bool)
        at = np.clip(np.searchsorted(self.keys, query), 0, len(self.keys) - 1)
        found = inside & (self.keys[at] == query)
        return np.where(found, self.values[at], np.nan), found


def _lookup(
    actual: Actuals, series: NDArray[np.object_], steps: I64
) -> tuple[F64, NDArray[np.bool_]]:
    """Actual values at (series, step) pairs, and whether each exists."""
    index = _Index(actual)
    return index.lookup(index.code(series), steps)


def mase_scales(actual: Actuals, season: int, before_step: int) -> dict[str, float]:
    """Per series: mean |y[t] - y[t-season]| over steps before `before_step`."""
    early = actual.steps < before_step
    a = Actuals(actual.series[early], actual.steps[early], actual.values[early])
    previous, found = _lookup(a, a.series, a.steps - season)
    diffs = np.abs(a.values - previous)
    scales: dict[str, float] = {}
    for name in np.unique(a.series.astype(str)):
        mine = (a.series.astype(str) == name) & found
        if mine.any():
            scales[name] = float(diffs[mine].mean())
    return scales


def score(
    actual: Actuals, issued: Issued, from_step: int, scales: dict[str, float]
) -> dict[str, Any]:
    """MAE, MSE, RMSE, sMAPE (%) and MASE per horizon (lists; MASE's is `mase_by_horizon`)
    and averaged over 1..H (`mae_avg`, ..., `mase`), for the forecasts issued at steps
    >= from_step whose target arrived. A horizon with nothing scored (NaN: longer than
    the file) is left out of the averages rather than making them NaN."""
    keep = issued.steps >= from_step
    series, steps, yhat = issued.series[keep], issued.steps[keep], issued.yhat[keep]
    horizon = issued.yhat.shape[1]
    scale = np.array([scales.get(str(s), np.nan) for s in series])
    scale = np.where(scale > 0, scale, np.nan)
    per: dict[str, list[float]] = {"mae": [], "mse": [], "rmse": [], "smape": [], "mase": []}
    coverage: list[float] = []
    widths: list[float] = []
    with_intervals = issued.lower is not None and issued.upper is not None
    counts = []
    index = _Index(actual)
    codes = index.code(series)
    for h in range(1, horizon + 1):
        truth, found = index.lookup(codes, steps + h)
        error = yhat[found, h - 1] - truth[found]
        absolute = np.abs(error)
        denominator = np.abs(truth[found]) + np.abs(yhat[found, h - 1])
        smape = np.where(
            denominator > 0, 200.0 * absolute / np.where(denominator > 0, denominator, 1), 0.0
        )
        scaled = absolute / scale[found]
        counts.append(int(found.sum()))
        per["mae"].append(_mean(absolute))
        per["mse"].append(_mean(error**2))
        per["rmse"].append(float(np.sqrt(per["mse"][-1])))
        per["smape"].append(_mean(smape))
        per["mase"].append(_mean(scaled[np.isfinite(scaled)]))
        if issued.lower is not None and issued.upper is not None:
            lo, up = issued.lower[keep][found, h - 1], issued.upper[keep][found, h - 1]
            known = np.isfinite(lo) & np.isfinite(up)
            inside = (truth[found] >= lo) & (truth[found] <= up)
            coverage.append(_mean(inside[known].astype(float)))
            widths.append(_mean((up - lo)[known]))
    out: dict[str, Any] = {k: v for k, v in per.items() if k != "mase"}
    out["mase_by_horizon"] = per["mase"]
    out["mae_avg"] = over_scored(per["mae"])
    out["mse_avg"] = over_scored(per["mse"])
    out["rmse_avg"] = float(np.sqrt(out["mse_avg"]))
    out["smape_avg"] = over_scored(per["smape"])
    out["mase"] = over_scored(per["mase"])
    out["n_forecasts"] = sum(counts)
    if with_intervals:
        out["coverage"] = coverage
        out["coverage_avg"] = over_scored(coverage)
        out["width_avg"] = over_scored(widths)
    return out


def mae_after(
    actual: Actuals,
    issued: Issued,
    changes: list[tuple[str, int]],
    window: int,
    from_step: int,
) -> float:
    """MAE (all horizons) of the forecasts a series issued in the `window` steps after
    each of its changes (series, step) at or after from_step; NaN without any."""
    errors = []
    series = issued.series.astype(str)
    index = _Index(actual)
    codes = index.code(issued.series)
    for name, at in changes:
        if at < from_step:
            continue
        rows = (series == name) & (issued.steps >= at) & (issued.steps < at + window)
        for h in range(1, issued.yhat.shape[1] + 1):
            truth, found = index.lookup(codes[rows], issued.steps[rows] + h)
            errors.append(np.abs(issued.yhat[rows][found, h - 1] - truth[found]))
    return _mean(np.concatenate(errors)) if errors else float("nan")


def _mean(values: F64) -> float:
    return float(values.mean()) if len(values) else float("nan")


def over_scored(per_horizon: list[float]) -> float:
    """The mean over the horizons that have a score; NaN when none has."""
    values = np.array(per_horizon, dtype=float)
    return _mean(values[~np.isnan(values)])
