"""Outputs as InfluxDB points, in the schema of DESIGN.md (what Grafana reads).

    observed        tags kind, series                fields value                  time: the step
    forecast        tags horizon, model, series      fields yhat, lower, upper,    time: the target
                                                            issued_at, version,
                                                            weight_<member> (ensemble)
    forecast_error  tags horizon, model, series      fields abs_err, sq_err        time: the target
    (events)        tags and fields as the event has them                      time: the event

The model version is a field, not a tag: a replay after a restart can be made by other
weights than the first write (a promotion came between), and must still overwrite it.

A forecast point's key is measurement + tags + target time, so writing the same
forecast again overwrites it: replays cannot duplicate output. This is the hot end of
the sink: lines are assembled from pre-escaped pieces, one f-string per point.
"""

from __future__ import annotations

import math
import sys
from functools import lru_cache
from typing import Any, Literal

import numpy as np

from connectors.base import Output
from connectors.line_protocol import format_line
from streamer.core.records import Forecasts

_TAG_ESCAPES = str.maketrans({",": r"\,", " ": r"\ ", "=": r"\="})


@lru_cache(maxsize=200_000)
def tag(value: str) -> str:
    """A tag value escaped for line protocol (cached: series ids repeat every batch)."""
    return value.translate(_TAG_ESCAPES)


def observed_lines(output: Output) -> list[str]:
    batch = output.observed
    values = batch.target
    keep = np.isfinite(values)
    times = batch.times_ns.tolist()
    return [
        f"observed,kind={tag(kind)},series={tag(series)} value={v!r} {t}"
        for series, kind, v, t, ok in zip(
            batch.series.tolist(),
            batch.kinds.tolist(),
            values.tolist(),
            times,
            keep.tolist(),
            strict=True,
        )
        if ok
    ]


def forecast_lines(output: Output) -> list[str]:
    return [line for part in output.forecasts.parts() for line in _forecast_lines(part)]


def _forecast_lines(f: Forecasts) -> list[str]:
    horizon = f.horizon
    prefixes = [f"forecast,horizon={h},model={tag(f.model)},series=" for h in range(1, horizon + 1)]
    targets = f.target_times_ns().tolist()
    issued = (f.steps * f.step_ns).tolist()
    yhat = f.yhat.tolist()
    finite = np.isfinite(f.yhat)
    all_finite = bool(finite.all())
    intervals = _intervals(f.lower, f.upper, f.yhat.shape)
    version = "" if f.version is None else f",version={f.version}i"
    weights = _weights(f.weights)
    lines: list[str] = []
    for i, series in enumerate(f.series.tolist()):
        name, row, at, when = tag(series), yhat[i], issued[i], targets[i]
        for j in range(horizon):
            if not all_finite and not finite[i, j]:
                continue  # line protocol cannot hold NaN or infinity
            interval = intervals[i][j] if intervals else ""
            extra = weights[i][j] if weights else ""
            lines.append(
                f"{prefixes[j]}{name} yhat={row[j]!r}{interval},issued_at={at}i{version}{extra}"
                f" {when[j]}"
            )
    return lines


def _weights(weights: dict[str, np.ndarray] | None) -> list[list[str]] | None:
    """`,weight_<member>=..` for each forecast of a combination; None if not one."""
    if not weights:
        return None
    names = [f",weight_{tag(m)}=" for m in weights]
    values = [w.round(4).tolist() for w in weights.values()]
    rows, horizon = next(iter(weights.values())).shape
    return [
        [
            "".join(f"{n}{v[i][j]!r}" for n, v in zip(names, values, strict=True))
            for j in range(horizon)
        ]
        for i in range(rows)
    ]


def _intervals(
    lower: np.ndarray | None, upper: np.ndarray | None, shape: tuple[int, ...]
) -> list[list[str]] | None:
    """`,lower=..,upper=..` per forecast, "" where the interval is unknown; None if none."""
    if lower is None or upper is None:
        return None
    known = (np.isfinite(lower) & np.isfinite(upper)).tolist()
    lo, up = lower.tolist(), upper.tolist()
    return [
        [f",lower={lo[i][j]!r},upper={up[i][j]!r}" if known[i][j] else "" for j in range(shape[1])]
        for i in range(shape[0])
    ]


def iso_times(times_ns: Any) -> list[str]:
    """RFC 3339 UTC strings for nanosecond timestamps (any shape, flattened): always with
    seconds (`2020-01-01T00:00:00Z`, which every ISO 8601 reader takes, not numpy's
    shortest `2020-01-01Z`), and with as many fractional digits as the times need."""
    ns = np.ravel(np.asarray(times_ns, dtype=np.int64))
    unit: Literal["s", "ms", "us", "ns"] = next(
        (u for u, per in _UNITS if not np.any(ns % per)), "ns"
    )
    stamps = np.datetime_as_string(ns.astype("datetime64[ns]"), unit=unit)
    return [f"{s}Z" for s in stamps.tolist()]


_UNITS: tuple[tuple[Literal["s", "ms", "us"], int], ...] = (
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
)  # coarsest first


def lines(output: Output) -> list[str]:
    """Every point of one output, observed first."""
    return (
        observed_lines(output) + forecast_lines(output) + error_lines(output) + event_lines(output)
    )


def error_lines(output: Output) -> list[str]:
    """A forecast_error point per finite error, without `sq_err` where the square is
    beyond a float (an error over 1.3e154), which InfluxDB would refuse as `inf`."""
    e = output.errors
    if e is None or len(e) == 0:
        return []
    absolute = np.abs(e.error)
    keep = np.isfinite(absolute).tolist()
    huge = (absolute > MAX_SQUARABLE).tolist()  # (one vector test, not one a point)
    return [
        f"forecast_error,horizon={h},model={tag(m)},series={tag(s)} "
        f"abs_err={a!r}{'' if big else f',sq_err={a * a!r}'} {t}"
        for s, h, m, a, t, ok, big in zip(
            e.series.tolist(),
            e.horizon.tolist(),
            e.model.tolist(),
            absolute.tolist(),
            e.times_ns.tolist(),
            keep,
            huge,
            strict=True,
        )
        if ok
    ]


MAX_SQUARABLE = math.sqrt(sys.float_info.max)  # about 1.34e154: its square is a float


def squared_error(absolute: float, prefix: str) -> str:
    """`prefix` and the error's square, or "" where the square is beyond a float."""
    return f"{prefix}{absolute * absolute!r}" if absolute <= MAX_SQUARABLE else ""


def event_lines(output: Output) -> list[str]:
    return [format_line(e.measurement, e.tags, e.fields, e.time_ns) for e in output.events]
