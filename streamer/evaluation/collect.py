"""What the runs of `evaluate` produced: a run's sink outputs as arrays (`actuals`,
`issued`, `weights`, `served`), and every run's scores, overall, by horizon bucket and
per series (`score_runs`)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from streamer.core.records import Forecasts, StepBatch
from streamer.engine.scoring import (
    F64,
    Actuals,
    Issued,
    mae_after,
    mase_scales,
    over_scored,
    score,
)
from streamer.evaluation.options import EvaluateOptions, ModelRun


def served(forecasts: list[Forecasts], warmup_step: int) -> dict[str, int]:
    """How many forecasts issued after the warm-up each model tag answered for (a net
    behind a cold-start gate is answered for by its baseline until it serves)."""
    counts: Counter[str] = Counter()
    for f in forecasts:
        for part in f.parts():
            counts[part.model] += int((part.steps >= warmup_step).sum())
    return {tag: n for tag, n in counts.items() if n}


def actuals(batches: list[StepBatch]) -> Actuals:
    if not batches:
        return Actuals(np.empty(0, object), np.empty(0, np.int64), np.empty(0))
    real = np.concatenate([~b.filled for b in batches])
    return Actuals(
        np.concatenate([b.series for b in batches])[real],
        np.concatenate([b.steps for b in batches])[real],
        np.concatenate([b.target for b in batches])[real],
    )


def issued(forecasts: list[Forecasts], horizon: int) -> Issued:
    if not forecasts:
        empty = np.empty((0, horizon))
        return Issued(np.empty(0, object), np.empty(0, np.int64), empty, empty, empty)

    def bound(f: Forecasts, b: F64 | None) -> F64:
        return np.full(f.yhat.shape, np.nan) if b is None else b

    return Issued(
        np.concatenate([f.series for f in forecasts]),
        np.concatenate([f.steps for f in forecasts]),
        np.concatenate([f.yhat for f in forecasts]),
        np.concatenate([bound(f, f.lower) for f in forecasts]),
        np.concatenate([bound(f, f.upper) for f in forecasts]),
    )


def weights(forecasts: list[Forecasts]) -> dict[str, F64] | None:
    if not forecasts or forecasts[0].weights is None:
        return None
    members = list(forecasts[0].weights)
    return {m: np.concatenate([(f.weights or {})[m] for f in forecasts]) for m in members}


# --- scoring ------------------------------------------------------------------------------


def buckets(horizon: int) -> list[int]:
    """The horizon buckets reported: h=1, then the mean over 1..k for k in 24, 48 and
    the whole horizon, as far as the horizon reaches."""
    ends = [1, *(k for k in (24, 48) if k <= horizon), horizon]
    return sorted(set(ends))


def bucket_name(end: int) -> str:
    return "h=1" if end == 1 else f"1..{end}"


def _by_bucket(metrics: dict[str, Any], horizon: int) -> dict[str, dict[str, float]]:
    return {
        bucket_name(end): {
            "mse": over_scored(metrics["mse"][:end]),
            "mae": over_scored(metrics["mae"][:end]),
        }
        for end in buckets(horizon)
    }


def _per_series(
    run: ModelRun, warmup_step: int, scales: dict[str, float], horizon: int
) -> dict[str, dict[str, Any]]:
    out = {}
    actual_names, issued_names = run.actual.series.astype(str), run.issued.series.astype(str)
    for name in sorted(set(issued_names.tolist())):
        a, i = actual_names == name, issued_names == name
        given = run.issued
        metrics = score(
            Actuals(run.actual.series[a], run.actual.steps[a], run.actual.values[a]),
            Issued(
                given.series[i],
                given.steps[i],
                given.yhat[i],
                None if given.lower is None else given.lower[i],
                None if given.upper is None else given.upper[i],
            ),
            warmup_step,
            scales,
        )
        out[name] = {
            "mse_avg": metrics["mse_avg"],
            "mae_avg": metrics["mae_avg"],
            "mase": metrics["mase"],
            "buckets": _by_bucket(metrics, horizon),
        }
    return out


def score_runs(
    runs: dict[str, ModelRun], options: EvaluateOptions, warmup_step: int
) -> dict[str, dict[str, Any]]:
    """Each run's metrics (`scoring.score`), with its buckets, per-series metrics, error
    after the change points, retrains, drifts, time, and who served its forecasts."""
    any_run = next(iter(runs.values()))
    scales = mase_scales(any_run.actual, options.season, warmup_step)
    models = {
        name: score(run.actual, run.issued, warmup_step, scales) for name, run in runs.items()
    }
    # Change points all models share: drift in the inputs, which no model influences.
    changes = [
        (e.tags["series"], e.time_ns // options.step_ns)
        for e in any_run.drifts
        if e.tags["signal"] == "input"
    ]
    for name, run in runs.items():
        m = models[name]
        m["buckets"] = _by_bucket(m, options.horizon)
        m["per_series"] = _per_series(run, warmup_step, scales, options.horizon)
        m["retrains"] = len(run.retrains)
        m["drifts"] = len(run.drifts)
        m["mae_after_changes"] = mae_after(
            run.actual, run.issued, changes, options.season, warmup_step
        )
        m["seconds"] = round(run.seconds, 3)
        m["served_by"] = run.served
        if run.weights is not None:
            scored = run.issued.steps >= warmup_step
            m["mean_weights"] = {
                member: float(w[scored].mean()) for member, w in run.weights.items()
            }
    return models
