"""Outputs as InfluxDB points, in the schema of DESIGN.md (what Grafana reads).

    observed        tags series, kind                fields value                  time: the step
    forecast        tags horizon, model, series      fields yhat, lower, upper,    time: the target
                                                            issued_at

A forecast point's key is measurement + tags + target time, so writing the same
forecast again overwrites it: replays cannot duplicate output.
"""

from __future__ import annotations

import numpy as np

from connectors.base import Output
from connectors.line_protocol import format_line


def observed_lines(output: Output) -> list[str]:
    batch = output.observed
    times = batch.times_ns.tolist()
    values = batch.target.tolist()
    return [
        format_line("observed", {"kind": str(kind), "series": str(series)}, {"value": v}, t)
        for series, kind, v, t in zip(batch.series, batch.kinds, values, times, strict=True)
    ]


def forecast_lines(output: Output) -> list[str]:
    f = output.forecasts
    targets = f.target_times_ns().tolist()
    issued = (f.steps * f.step_ns).tolist()
    yhat = f.yhat.tolist()
    lower = f.lower.tolist() if f.lower is not None else None
    upper = f.upper.tolist() if f.upper is not None else None
    horizons = [str(h) for h in range(1, f.horizon + 1)]
    lines = []
    for i, series in enumerate(f.series):
        tags_series = str(series)
        for j, h in enumerate(horizons):
            fields: dict[str, float | int] = {"yhat": yhat[i][j]}
            if lower is not None and upper is not None and np.isfinite(lower[i][j]):
                fields["lower"] = lower[i][j]
                fields["upper"] = upper[i][j]
            fields["issued_at"] = issued[i]
            tags = {"horizon": h, "model": f.model, "series": tags_series}
            lines.append(format_line("forecast", tags, fields, targets[i][j]))
    return lines


def lines(output: Output) -> list[str]:
    """Every point of one output, observed first."""
    return observed_lines(output) + forecast_lines(output)
