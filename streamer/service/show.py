"""`streamer show`: what a sink holds, as a table of series (latest value, the forecast
of the next step with its interval, recent error, the model and version that made it)
or, for one series, a plot of its values, forecasts and interval band by date.

Both are folds over points (`connectors.readback`), whichever sink they come from.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.readback import Point

NS = 1_000_000_000


@dataclass
class SeriesRow:
    """One series as the sink has it."""

    series: str
    observed_ns: int = -1  # time of the latest value
    value: float | None = None
    forecast_ns: int = -1  # target time of the latest forecast at horizon 1
    forecast: dict[str, Any] = field(default_factory=dict)  # yhat, lower, upper, version
    model: str = ""
    errors: deque[tuple[int, float]] = field(default_factory=deque)  # (time, abs error)

    @property
    def recent_mae(self) -> float | None:
        return sum(e for _, e in self.errors) / len(self.errors) if self.errors else None


def summarise(points: Iterable[Point], errors: int = 50) -> list[SeriesRow]:
    """Each series' row, by name; `errors`: how many of its latest horizon-1 errors make
    its recent error."""
    rows: dict[str, SeriesRow] = {}
    for p in points:
        name = p.tags.get("series")
        if name is None:
            continue
        row = rows.get(name) or rows.setdefault(name, SeriesRow(name, errors=deque(maxlen=errors)))
        if p.measurement == "observed" and "value" in p.fields and p.time_ns >= row.observed_ns:
            row.observed_ns, row.value = p.time_ns, float(p.fields["value"])
        elif p.measurement == "forecast" and p.tags.get("horizon") == "1":
            if p.time_ns > row.forecast_ns:
                row.forecast_ns, row.forecast = p.time_ns, {}
            if p.time_ns == row.forecast_ns:  # fields of one point may come one by one
                row.forecast.update(p.fields)
                row.model = p.tags.get("model", row.model)
        elif (
            p.measurement == "forecast_error"
            and p.tags.get("horizon") == "1"
            and "abs_err" in p.fields
        ):
            row.errors.append((p.time_ns, float(p.fields["abs_err"])))
    return [rows[name] for name in sorted(rows)]


def table(rows: list[SeriesRow], limit: int | None = 50) -> str:
    """The rows as an aligned text table (the first `limit`, and a count of the rest)."""
    shown = rows if limit is None else rows[:limit]
    head = ("series", "latest", "at", "next forecast", "interval", "for", "recent MAE", "model")
    cells = [head] + [_cells(r) for r in shown]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    if len(shown) < len(rows):
        lines.append(f"... and {len(rows) - len(shown)} more series (--limit, or --series NAME)")
    return "\n".join(lines)


def _cells(r: SeriesRow) -> tuple[str, ...]:
    f = r.forecast
    interval = f"[{_num(f['lower'])}, {_num(f['upper'])}]" if "lower" in f and "upper" in f else "-"
    mae = f"{_num(r.recent_mae)} ({len(r.errors)})" if r.recent_mae is not None else "-"
    version = f" v{f['version']}" if f.get("version") is not None else ""
    return (
        r.series,
        _num(r.value),
        _when(r.observed_ns),
        _num(f.get("yhat")),
        interval,
        _when(r.forecast_ns),
        mae,
        f"{r.model}{version}" if r.model else "-",
    )


def _num(value: Any) -> str:
    """A value to read at a glance: 5 significant digits, but every digit of its whole
    part and two decimals (below 1e15), so that a series near a million is not all
    `1e+06`."""
    if value is None:
        return "-"
    number = float(value)
    whole = len(str(int(abs(number)))) if abs(number) < 1e15 else 0
    return f"{number:.{max(5, whole + 2)}g}"


def _when(time_ns: int) -> str:
    if time_ns < 0:
        return "-"
    return datetime.fromtimestamp(time_ns / NS, UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class Trace:
    """One series: its values and its forecasts at one horizon, by time (ns)."""

    series: str
    horizon: int
    observed: dict[int, float] = field(default_factory=dict)
    forecast: dict[int, dict[str, Any]] = field(default_factory=dict)


def trace(points: Iterable[Point], series: str, horizon: int) -> Trace:
    out = Trace(series, horizon)
    for p in points:
        if p.tags.get("series") != series:
            continue
        if p.measurement == "observed" and "value" in p.fields:
            out.observed[p.time_ns] = float(p.fields["value"])
        elif p.measurement == "forecast" and p.tags.get("horizon") == str(horizon):
            out.forecast.setdefault(p.time_ns, {}).update(p.fields)
    return out


def series_table(t: Trace, last: int | None) -> str:
    """The last `last` steps (None: all) and the forecasts beyond them: time, actual,
    forecast and interval, one line each."""
    times = sorted(t.observed)[-last:] if last else sorted(t.observed)
    start = times[0] if times else min(t.forecast, default=0)
    keys = sorted(set(times) | {k for k in t.forecast if k >= start})
    lines = [f"{t.series}, forecasts {t.horizon} step(s) ahead"]
    lines.append(f"{'time':<20}{'actual':>12}{'forecast':>12}{'lower':>12}{'upper':>12}")
    for k in keys:
        f = t.forecast.get(k, {})
        cells = [t.observed.get(k), f.get("yhat"), f.get("lower"), f.get("upper")]
        lines.append(f"{_when(k):<20}" + "".join(f"{_num(c):>12}" for c in cells))
    return "\n".join(lines)


def plot(t: Trace, path: Path, last: int | None, pyplot: Any) -> int:
    """Draw the last `last` values (None: all) with the forecasts made for them and
    after them, and the interval band, by date; the number of values drawn. Lines and
    the band break where steps are missing (an outage, a restart, a series that paused),
    so that nothing is drawn where the sink holds nothing."""
    times = sorted(t.observed)[-last:] if last else sorted(t.observed)
    start = times[0] if times else min(t.forecast, default=0)
    ahead = sorted(k for k in t.forecast if k >= start)
    step = _step(sorted(set(times) | set(ahead)))
    fig, ax = pyplot.subplots(figsize=(11, 4.5))
    when, (actual,) = _broken(times, step, [t.observed[k] for k in times])
    ax.plot(when, actual, color="black", lw=1.2, label="actual")
    made = [k for k in ahead if "yhat" in t.forecast[k]]
    if made:
        when, (yhat,) = _broken(made, step, [t.forecast[k]["yhat"] for k in made])
        ax.plot(when, yhat, lw=1.2, label=f"forecast, {t.horizon} step(s) ahead")
    band = [k for k in ahead if {"lower", "upper"} <= set(t.forecast[k])]
    if band:
        bounds = ([t.forecast[k][b] for k in band] for b in ("lower", "upper"))
        when, (lower, upper) = _broken(band, step, *bounds)
        ax.fill_between(when, lower, upper, alpha=0.25, label="interval")
    ax.set_title(f"{t.series}: actual and forecast at horizon {t.horizon}")
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot.close(fig)
    return len(times)


def _step(times: list[int]) -> int:
    """The series' step: the shortest distance between two of its times (0: unknown)."""
    return min((b - a for a, b in itertools.pairwise(times)), default=0)


def _broken(
    times: list[int], step: int, *columns: list[float]
) -> tuple[list[datetime], list[list[float]]]:
    """The times as dates and the columns, with a NaN between two times more than one
    step apart: matplotlib breaks a line (and a band) there."""
    when: list[int] = []
    out: list[list[float]] = [[] for _ in columns]
    for i, k in enumerate(times):
        if step and when and k - when[-1] > step:
            when.append((when[-1] + k) // 2)
            for column in out:
                column.append(math.nan)
        when.append(k)
        for column, values in zip(out, columns, strict=True):
            column.append(values[i])
    return [datetime.fromtimestamp(k / NS, UTC) for k in when], out
