"""What `streamer evaluate` shows a person: tables, plots and progress."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import IO, Any

import numpy as np

from streamer.evaluation.collect import bucket_name, buckets
from streamer.evaluation.options import EvaluateError, Progress, Report

BASELINES = (("last_value", "last"), ("seasonal_naive", "snaive"))
RATE_AFTER = 0.5  # seconds a model has run before its rows/s mean anything


def _ratios(report: Report, name: str, bucket: str) -> str:
    """`(x0.65 last, x0.25 snaive)`: MSE against the baselines run beside it."""
    mine = report.models[name]["buckets"][bucket]["mse"]
    parts = []
    for baseline, short in BASELINES:
        if baseline in report.models and baseline != name:
            theirs = report.models[baseline]["buckets"][bucket]["mse"]
            parts.append(f"x{mine / theirs:.2f} {short}" if theirs > 0 else f"- {short}")
    return f" ({', '.join(parts)})" if parts else ""


AVERAGES = (  # (header, metric, format) of the averages' table
    ("MAE", "mae_avg", ".4g"),
    ("RMSE", "rmse_avg", ".4g"),
    ("sMAPE %", "smape_avg", ".3f"),
    ("MASE", "mase", ".4g"),
    ("cover", "coverage_avg", ".3f"),
    ("width", "width_avg", ".4g"),
    ("drifts", "drifts", "d"),
    ("retrains", "retrains", "d"),
    ("MAE after", "mae_after_changes", ".4g"),
)


def _averages(report: Report) -> list[str]:
    """The averages over all horizons, a line per model, each column as wide as its
    widest cell (a MASE of 4774.4 does not run into its neighbour)."""
    rows = {
        name: [format(m[key], spec) for _, key, spec in AVERAGES]
        for name, m in report.models.items()
    }
    widths = [
        max(len(head), *(len(r[i]) for r in rows.values())) + 2
        for i, (head, _, _) in enumerate(AVERAGES)
    ]
    heads = [head for head, _, _ in AVERAGES]
    return [
        f"{name:<20}" + "".join(c.rjust(w) for c, w in zip(cells, widths, strict=True))
        for name, cells in [("model", heads), *rows.items()]
    ]


def table(report: Report) -> str:
    """The overall metrics: MSE by horizon bucket (with ratios to the baselines), then
    the averages over all horizons, one line per model."""
    horizon = len(next(iter(report.models.values()))["mse"])
    names = [bucket_name(end) for end in buckets(horizon)]
    cells = {
        name: [f"{m['buckets'][b]['mse']:.4g}{_ratios(report, name, b)}" for b in names]
        for name, m in report.models.items()
    }
    width = max(len(c) for row in cells.values() for c in row) + 2
    lines = [
        "MSE by horizon (x: ratio to last value / seasonal naive)",
        f"{'model':<20}" + "".join(f"{b:>{width}}" for b in names) + f"{'seconds':>10}",
    ]
    for name, row in cells.items():
        seconds = report.models[name]["seconds"]
        lines.append(f"{name:<20}" + "".join(f"{c:>{width}}" for c in row) + f"{seconds:>10.1f}")
    lines.append("")
    lines += _averages(report)
    for name, m in report.models.items():
        if len(m["served_by"]) > 1:
            total = sum(m["served_by"].values())
            shares = ", ".join(f"{k} {v / total:.0%}" for k, v in m["served_by"].items())
            lines.append(f"{name}: forecasts answered by {shares}")
        if "mean_weights" in m:
            shares = ", ".join(f"{k} {v:.2f}" for k, v in m["mean_weights"].items())
            lines.append(f"{name}: mean member weights {shares}")
    scored = max(sum(not math.isnan(v) for v in m["mse"]) for m in report.models.values())
    over = f"1..{horizon}" if scored == horizon else f"the {scored} of 1..{horizon} with a score"
    lines.append(
        f"{report.n_forecasts} forecasts scored per model over {report.rows} rows, in "
        f"{report.seconds:.1f}s; averages over horizons {over}; cover: share of outcomes "
        "inside the interval; MAE after: in the season after each change in the inputs"
    )
    return "\n".join(lines)


def series_table(report: Report) -> str:
    """MSE over all horizons per series (rows) and model (columns)."""
    models = list(report.models)
    series = sorted({s for m in report.models.values() for s in m["per_series"]})
    width = max([12, *(len(m) + 2 for m in models)])
    label = max([8, *(len(s) + 2 for s in series)])
    lines = [
        "MSE per series, mean over all horizons",
        f"{'series':<{label}}" + "".join(f"{m:>{width}}" for m in models),
    ]
    for name in series:
        row = [
            report.models[m]["per_series"].get(name, {}).get("mse_avg", math.nan) for m in models
        ]
        lines.append(f"{name:<{label}}" + "".join(f"{v:>{width}.4g}" for v in row))
    return "\n".join(lines)


def plot(report: Report, path: Path, series: str, horizon: int = 1, last: int | None = 500) -> None:
    """Two panels: the actual values of `series` with each model's `horizon`-step-ahead
    forecasts and intervals over the last `last` scored steps (None: all), by date; and
    each model's MSE by horizon over all series."""
    plt = pyplot()
    first = next(iter(report.runs.values())).actual
    known = sorted(set(first.series.astype(str).tolist()))
    if series not in known:
        raise EvaluateError(f"--plot-series {series!r} is not a target; the targets are {known}")
    h_max = len(next(iter(report.models.values()))["mse"])
    if not 1 <= horizon <= h_max:
        raise EvaluateError(f"--plot-horizon must be in 1..{h_max}, got {horizon}")
    mine = (first.series.astype(str) == series) & (first.steps >= report.warmup_step)
    steps = first.steps[mine]
    start = int(steps[-last]) if last is not None and len(steps) > last else report.warmup_step

    def dates(values: Any) -> Any:
        return (np.asarray(values, dtype=np.int64) * report.step_ns).astype("datetime64[ns]")

    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(13, 8), gridspec_kw={"height_ratios": [3, 2]}
    )
    shown = mine & (first.steps >= start)
    top.plot(dates(first.steps[shown]), first.values[shown], color="black", lw=1.4, label="actual")
    for name, run in report.runs.items():
        issued = run.issued
        rows = (issued.series.astype(str) == series) & (issued.steps + horizon >= start)
        rows &= issued.steps >= report.warmup_step
        when = dates(issued.steps[rows] + horizon)
        (line,) = top.plot(when, issued.yhat[rows, horizon - 1], lw=0.9, label=name)
        if issued.lower is not None and issued.upper is not None:
            lower, upper = issued.lower[rows, horizon - 1], issued.upper[rows, horizon - 1]
            if np.isfinite(lower).any():
                top.fill_between(when, lower, upper, color=line.get_color(), alpha=0.12, lw=0)
    top.set_title(f"{series}: actual, {horizon}-step-ahead forecasts and intervals")
    top.legend(loc="upper left", fontsize="small")
    for label in top.get_xticklabels():
        label.set_rotation(20)
        label.set_horizontalalignment("right")
    for name, m in report.models.items():
        bottom.plot(range(1, h_max + 1), m["mse"], marker=".", lw=1, label=name)
    bottom.set_title("MSE by horizon, all series")
    bottom.set_xlabel("horizon (steps ahead)")
    bottom.set_ylabel("MSE")
    bottom.legend(loc="upper left", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise EvaluateError(
            "--plot needs matplotlib: pip install 'streamer[plot]' (or pip install matplotlib)"
        ) from None
    return plt


class ProgressBar:
    """File rows done by the model being run, on stderr: redrawn in place on a terminal,
    else a line every `every` seconds. The rate is shown once the model has run for
    RATE_AFTER seconds: over less, one row in next to no time reads as billions a second."""

    def __init__(self, stream: IO[str] | None = None, every: float = 5.0) -> None:
        stream = sys.stderr if stream is None else stream
        self.stream = stream
        self.tty = stream.isatty()
        self.every = 0.2 if self.tty else every
        self.started = time.monotonic()
        self.model = ""
        self.last = -math.inf

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        if p.model != self.model:
            self.model, self.started = p.model, now
        end = p.done >= p.rows
        if now - self.last < self.every and not end:
            return
        self.last = now
        share = p.done / p.rows if p.rows else 1.0
        elapsed = now - self.started
        rate = f", {p.done / elapsed:,.0f} rows/s" if elapsed >= RATE_AFTER else ""
        bar = "#" * int(30 * share)
        text = (
            f"{p.model} ({p.index}/{p.models}) [{bar:<30}] {100 * share:5.1f}% "
            f"{p.done}/{p.rows} rows{rate}"
        )
        if self.tty:
            self.stream.write("\r" + text + ("\n" if end else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
