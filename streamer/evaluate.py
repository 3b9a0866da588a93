"""`streamer evaluate`: prequential (test-then-train) evaluation of a CSV file.

Each model runs through the daemon's own path: a replay of the file, the decoder, the
window, the forecaster, the pipeline and a sink that keeps what it is given. One file
row (a time and one value per target column) is one micro-batch, so every model sees
the data exactly as live, one step at a time: a forecast issued at step t is made before
step t+1 is read, and is scored against values read later. The LSTM trains on the first
`warmup_fraction` of the rows when the replay reaches their end, then retrains on a
schedule counted in event time, each time only on what the replay has delivered.
"""

from __future__ import annotations

import csv
import gzip
import logging
import math
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Literal, cast

import numpy as np

from connectors.base import RawRecord, StreamSource
from connectors.codecs import Decoder, TimeUnit
from connectors.memory import MemorySink
from connectors.replay import ReplaySource
from models.base import Forecaster
from models.baseline import LastValue, SeasonalNaive
from models.outcomes import Outcomes
from models.river_models import holt_winters, snarimax
from streamer.config import DriftConfig, IntervalsConfig, LstmModel, RetrainConfig
from streamer.daemon import build_recurrent, retrain_settings
from streamer.drift import DriftMonitor, DriftResponse, make_detector
from streamer.pipeline import Pipeline, PipelineSettings
from streamer.records import Event, Forecasts, StepBatch
from streamer.retrain import Retrainer
from streamer.scoring import F64, Actuals, Issued, mae_after, mase_scales, score
from streamer.window import WindowBuffer

log = logging.getLogger(__name__)

MODELS = ("lstm", "naive", "seasonal_naive", "snarimax", "holtwinters")
# The LSTM again, retraining on drift (on_drift: retrain) instead of only recording it.
DRIFT_RETRAIN = "lstm_drift_retrain"


class EvaluateError(ValueError):
    """The file or the options cannot be evaluated; the message says what and why."""


@dataclass(frozen=True)
class EvaluateOptions:
    """What to evaluate, and how (the command line's flags)."""

    data: Path
    time_col: str
    targets: list[str]
    step_ns: int
    horizon: int
    warmup_fraction: float = 0.25
    normalize: Literal["none", "standard"] = "none"
    models: tuple[str, ...] = MODELS
    season: int = 24
    time_unit: TimeUnit | None = None  # None: ISO 8601 unless the times are numbers
    lstm: LstmModel = field(default_factory=lambda: LstmModel(type="lstm"))
    retrain: RetrainConfig = field(default_factory=RetrainConfig)
    intervals: IntervalsConfig = field(default_factory=IntervalsConfig)
    drift: DriftConfig = field(default_factory=DriftConfig)
    retrain_every: int = 0  # steps of event time between retrains; 0: once per season
    warmup_epochs: int = 20
    max_gap: int = 5
    progress: Callable[[int, int], None] | None = None  # (rows done, rows in all)


@dataclass
class ModelRun:
    """What one model produced over the file."""

    actual: Actuals
    issued: Issued
    retrains: list[Event]
    drifts: list[Event]  # drift points
    seconds: float


@dataclass(frozen=True)
class Report:
    """Per model: the metrics of `scoring.score`; the runs, for plots and tests."""

    models: dict[str, dict[str, Any]]
    n_forecasts: int
    seconds: float
    runs: dict[str, ModelRun]
    warmup_step: int

    def as_json(self) -> dict[str, Any]:
        return {"models": self.models, "n_forecasts": self.n_forecasts, "seconds": self.seconds}


# --- the file ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _FileFacts:
    rows: int
    warmup_time: str  # the time column of the first row after the warm-up
    mean: dict[str, float]
    std: dict[str, float]
    numeric_time: bool


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return cast(IO[str], gzip.open(path, "rt", encoding="utf-8-sig", newline=""))
    return open(path, encoding="utf-8-sig", newline="")


def _rows(path: Path) -> Iterator[dict[str, str]]:
    with _open_text(path) as stream:
        yield from csv.DictReader(stream)


def _inspect(options: EvaluateOptions) -> _FileFacts:
    """Check the columns, count the rows, and take warm-up statistics (one pass)."""
    if not options.data.is_file():
        raise EvaluateError(f"{options.data}: no such file")
    with _open_text(options.data) as stream:
        header = next(csv.reader(stream), [])
    missing = [c for c in (options.time_col, *options.targets) if c not in header]
    if missing:
        raise EvaluateError(
            f"{options.data}: no column {', '.join(map(repr, missing))}; "
            f"the columns are {', '.join(map(repr, header))}"
        )
    times = [row[options.time_col] for row in _rows(options.data)]
    if len(times) < 4:
        raise EvaluateError(f"{options.data}: {len(times)} data rows; at least 4 are needed")
    warm = max(1, min(len(times) - 1, int(len(times) * options.warmup_fraction)))
    sums = {t: [0.0, 0.0, 0] for t in options.targets}
    for i, row in enumerate(_rows(options.data)):
        if i >= warm:
            break
        for target in options.targets:
            value = _float(row.get(target))
            if value is not None:
                s = sums[target]
                s[0], s[1], s[2] = s[0] + value, s[1] + value * value, int(s[2]) + 1
    mean = {t: s[0] / s[2] if s[2] else 0.0 for t, s in sums.items()}
    std = {
        t: math.sqrt(max(s[1] / s[2] - mean[t] ** 2, 0.0)) if s[2] else 1.0 for t, s in sums.items()
    }
    return _FileFacts(
        rows=len(times),
        warmup_time=times[warm],
        mean=mean,
        std={t: v if v > 0 else 1.0 for t, v in std.items()},
        numeric_time=_float(times[0]) is not None,
    )


def _float(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


class _WideReplay(StreamSource):
    """A replay of a wide file: each row becomes one event per target column, named by
    the column, with the value standardised by the warm-up statistics if asked."""

    def __init__(
        self,
        replay: ReplaySource,
        options: EvaluateOptions,
        facts: _FileFacts,
        on_row: Callable[[], None],
    ) -> None:
        self.name = replay.name
        self.replay = replay
        self.options = options
        self.facts = facts
        self.on_row = on_row

    def poll(self, max_records: int, timeout: float) -> list[RawRecord]:
        out = []
        targets = self.options.targets
        standard = self.options.normalize == "standard"
        for record in self.replay.poll(max(1, max_records // len(targets)), timeout):
            fields = record.fields or {}
            for target in targets:
                value: Any = fields.get(target)
                number = _float(value)
                if standard and number is not None:
                    value = (number - self.facts.mean[target]) / self.facts.std[target]
                event = {
                    "series": target,
                    "value": value,
                    "time": fields.get(self.options.time_col),
                }
                out.append(RawRecord(record.payload, record.position, fields=event))
            self.on_row()
        return out

    def commit(self, positions: Mapping[str, int]) -> None:
        pass

    def seek(self, positions: Mapping[str, int]) -> None:
        pass

    @property
    def exhausted(self) -> bool:
        return self.replay.exhausted

    def close(self) -> None:
        self.replay.close()


# --- retraining in event time ------------------------------------------------------------


class _EventTimeSchedule:
    """The pipeline's retrain hook for evaluation: train on the warm-up rows once the
    model has seen them all, then retrain every `every` steps of event time, in the
    pipeline thread (deterministic, and nothing is read meanwhile)."""

    def __init__(
        self, retrainer: Retrainer, window: WindowBuffer, warmup_step: int, every: int, epochs: int
    ) -> None:
        self.retrainer = retrainer
        self.window = window
        self.warmup_step = warmup_step
        self.every = every
        self.epochs = epochs
        self.seen = -1  # the newest step the model has been given
        self.next_due: int | None = None
        self.events: list[Event] = []

    def poll(self, now_ns: int) -> list[Event]:
        seen, self.seen = self.seen, int(self.window.last_closed.max(initial=-1))
        attempt = self.retrainer.run_pending() if self.next_due is not None else None  # drift
        if self.next_due is None and seen >= self.warmup_step - 1:
            settings = self.retrainer.settings
            self.retrainer.settings = replace(settings, epochs=self.epochs, min_new_steps=1)
            attempt = self.retrainer.run_now("warm-up")
            self.retrainer.settings = settings
            self.next_due = seen + self.every
        elif attempt is None and self.next_due is not None and seen >= self.next_due:
            attempt = self.retrainer.run_now("schedule")
            self.next_due = seen + self.every
        if attempt is None:
            return []
        event = attempt.event(self.retrainer.model.name, seen * self.window.step_ns)
        self.events.append(event)
        return [event]

    def stop(self) -> None:
        pass


# --- running the models -------------------------------------------------------------------


def _forecaster(
    name: str, options: EvaluateOptions, window: WindowBuffer, warmup_step: int
) -> tuple[Forecaster, _EventTimeSchedule | None]:
    """The model of that name; for the LSTM, also its retraining in event time."""
    h, m = options.horizon, options.season
    if name == "naive":
        return LastValue(h), None
    if name == "seasonal_naive":
        return SeasonalNaive(h, m), None
    if name == "snarimax":
        return snarimax(h, m), None
    if name == "holtwinters":
        return holt_winters(h, m), None
    lstm = build_recurrent(options.lstm, options.retrain, h)
    # Event time: a retrain is never cut short by the wall clock.
    settings = replace(retrain_settings(options.lstm, options.retrain), max_duration=math.inf)
    every = options.retrain_every or max(m, 1)
    schedule = _EventTimeSchedule(
        Retrainer(lstm, settings), window, warmup_step, every, options.warmup_epochs
    )
    return lstm, schedule


def _decoder(time_unit: TimeUnit) -> Decoder:
    """The fields of `_WideReplay`'s events; any time is accepted, however far ahead."""
    return Decoder(
        kind="sensor",
        series_field="series",
        value_field="value",
        time_field="time",
        time_unit=time_unit,
        max_future_ns=2**62,
    )


def _run_model(
    name: str,
    options: EvaluateOptions,
    facts: _FileFacts,
    decoder: Decoder,
    warmup_step: int,
    on_row: Callable[[], None],
) -> ModelRun:
    started = time.monotonic()
    window = WindowBuffer(
        step_ns=options.step_ns,
        length=max(options.retrain.window, 2),
        max_gap=options.max_gap,
        idle_close_after=math.inf,
        max_series=len(options.targets),
    )
    forecaster, schedule = _forecaster(name, options, window, warmup_step)
    drift = options.drift
    monitor = DriftMonitor(make_detector(drift.detector), drift.detector.type, ("error", "input"))
    on_drift = None
    if name == DRIFT_RETRAIN and schedule is not None:
        retrainer = schedule.retrainer
        on_drift = DriftResponse(
            "retrain",
            drift.retrain_cooldown.total_seconds(),
            lambda reason: retrainer.request(reason, fresh_data=True),
            forecaster.reset,
        )
    sink = MemorySink()
    replay = ReplaySource(f"evaluate-{name}", options.data)
    pipeline = Pipeline(
        sources=[(_WideReplay(replay, options, facts, on_row), decoder)],
        window=window,
        forecaster=forecaster,
        sinks=[sink],
        retrainer=schedule,
        outcomes=Outcomes(options.horizon, options.intervals.coverage, options.intervals.window),
        drift=monitor,
        on_drift=on_drift,
        settings=PipelineSettings(
            max_batch=len(options.targets),
            max_wait=0.0,
            checkpoint_every=None,
            stop_at_end=True,
            progress_every=math.inf,
            rejected_log_every=math.inf,
        ),
        clock=lambda: 0.0,
    )
    try:
        counters = pipeline.run(threading.Event())
    finally:
        pipeline.close()
    if counters.rejected_total:
        reasons = ", ".join(f"{n} {r}" for r, n in counters.rejected.most_common())
        log.warning("%s: %d value(s) not used (%s)", options.data, counters.rejected_total, reasons)
    observed = [o.observed for o in sink.outputs if len(o.observed)]
    forecasts = [o.forecasts for o in sink.outputs if len(o.forecasts)]
    return ModelRun(
        actual=_actuals(observed),
        issued=_issued(forecasts, options.horizon),
        retrains=schedule.events if schedule else [],
        drifts=[e for o in sink.outputs for e in o.events if e.measurement == "drift"],
        seconds=time.monotonic() - started,
    )


def _actuals(batches: list[StepBatch]) -> Actuals:
    if not batches:
        return Actuals(np.empty(0, object), np.empty(0, np.int64), np.empty(0))
    real = np.concatenate([~b.filled for b in batches])
    return Actuals(
        np.concatenate([b.series for b in batches])[real],
        np.concatenate([b.steps for b in batches])[real],
        np.concatenate([b.target for b in batches])[real],
    )


def _issued(forecasts: list[Forecasts], horizon: int) -> Issued:
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


def evaluate(options: EvaluateOptions) -> Report:
    """Run every model over the file and score each (see the module doc)."""
    unknown = [m for m in options.models if m not in (*MODELS, DRIFT_RETRAIN)]
    if unknown:
        raise EvaluateError(
            f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}"
        )
    r = options.retrain
    if {"lstm", DRIFT_RETRAIN} & set(options.models) and r.window <= r.burn_in + options.horizon:
        raise EvaluateError(
            f"retrain.window ({r.window}) must be more than retrain.burn_in ({r.burn_in}) + "
            f"the horizon ({options.horizon}); set it in the -c config"
        )
    started = time.monotonic()
    facts = _inspect(options)
    time_unit: TimeUnit = options.time_unit or ("s" if facts.numeric_time else "iso8601")
    total = facts.rows * len(options.models)
    done = 0

    def on_row() -> None:
        nonlocal done
        done += 1
        if options.progress:
            options.progress(done, total)

    decoder = _decoder(time_unit)
    warmup_ns = decoder.event_time_ns({"time": facts.warmup_time})
    if warmup_ns is None:
        raise EvaluateError(
            f"{options.data}: {options.time_col} value {facts.warmup_time!r} is not a time "
            f"({time_unit}); set --time-unit"
        )
    warmup_step = warmup_ns // options.step_ns
    runs = {
        name: _run_model(name, options, facts, decoder, warmup_step, on_row)
        for name in options.models
    }
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
        models[name]["retrains"] = len(run.retrains)
        models[name]["drifts"] = len(run.drifts)
        models[name]["mae_after_changes"] = mae_after(
            run.actual, run.issued, changes, options.season, warmup_step
        )
        models[name]["seconds"] = round(run.seconds, 3)
    return Report(
        models=models,
        n_forecasts=max(m["n_forecasts"] for m in models.values()),
        seconds=round(time.monotonic() - started, 3),
        runs=runs,
        warmup_step=warmup_step,
    )


# --- presenting -----------------------------------------------------------------------------


def table(report: Report) -> str:
    """The averaged metrics of every model, one line each."""
    lines = [
        f"{'model':<20}{'MAE':>10}{'RMSE':>10}{'sMAPE %':>9}{'MASE':>8}{'cover':>7}"
        f"{'width':>10}{'drifts':>8}{'retrains':>9}{'MAE after':>11}"
    ]
    for name, m in report.models.items():
        lines.append(
            f"{name:<20}{m['mae_avg']:>10.4g}{m['rmse_avg']:>10.4g}{m['smape_avg']:>9.3f}"
            f"{m['mase']:>8.3f}{m['coverage_avg']:>7.3f}{m['width_avg']:>10.4g}"
            f"{m['drifts']:>8d}{m['retrains']:>9d}{m['mae_after_changes']:>11.4g}"
        )
    lines.append(
        f"{report.n_forecasts} forecasts scored per model, in {report.seconds:.1f}s; "
        "cover: share of outcomes inside the interval; MAE after: in the season after "
        "each change in the inputs"
    )
    return "\n".join(lines)


def plot(report: Report, path: Path, series: str, horizon: int = 1) -> None:
    """Actual values and each model's horizon-`horizon` forecasts for one series."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise EvaluateError(
            "--plot needs matplotlib: pip install 'streamer[plot]' (or pip install matplotlib)"
        ) from None
    figure, axes = plt.subplots(figsize=(12, 5))
    first = next(iter(report.runs.values())).actual
    mine = (first.series.astype(str) == series) & (first.steps >= report.warmup_step)
    axes.plot(first.steps[mine], first.values[mine], color="black", linewidth=1.5, label="actual")
    for name, run in report.runs.items():
        issued = run.issued
        rows = (issued.series.astype(str) == series) & (issued.steps >= report.warmup_step)
        axes.plot(
            issued.steps[rows] + horizon, issued.yhat[rows, horizon - 1], linewidth=0.9, label=name
        )
    axes.set_title(f"{series}: actual and {horizon}-step-ahead forecasts")
    axes.set_xlabel("step")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


class ProgressBar:
    """Rows done out of all, on stderr: redrawn in place on a terminal, else a line
    every `every` seconds."""

    def __init__(self, stream: IO[str] = sys.stderr, every: float = 5.0) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.every = 0.2 if self.tty else every
        self.started = time.monotonic()
        self.last = -math.inf

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last < self.every and done < total:
            return
        self.last = now
        share = done / total if total else 1.0
        rate = done / max(now - self.started, 1e-9)
        bar = "#" * int(30 * share)
        text = f"[{bar:<30}] {100 * share:5.1f}% {done}/{total} rows, {rate:,.0f} rows/s"
        if self.tty:
            self.stream.write("\r" + text + ("\n" if done >= total else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
