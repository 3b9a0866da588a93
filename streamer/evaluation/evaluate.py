"""`streamer evaluate`: prequential (test-then-train) evaluation of a CSV file.

Each model runs through the daemon's own path: a replay of the file, the decoder, the
window, the forecaster (built from the same table as the daemon's, `model_registry`),
the pipeline and a sink that keeps what it is given. One file row (a time and one value
per target column) is one micro-batch, so every model sees the data exactly as live,
one step at a time: a forecast issued at step t is made before step t+1 is read, and is
scored against values read later. A model with a net trains on the first
`warmup_fraction` of the rows when the replay reaches their end, then retrains on a
schedule counted in event time, each time only on what the replay has delivered; its
linear highway learns from every step as it arrives, as it does live.
"""

from __future__ import annotations

import csv
import gzip
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Literal, cast

import numpy as np

from connectors.base import RawRecord, StreamSource
from connectors.codecs import Decoder, TimeUnit
from connectors.memory import MemorySink
from connectors.replay import ReplaySource
from models.outcomes import Outcomes
from streamer.config import schema as cfg
from streamer.config.drift import make_detector
from streamer.config.models import (
    COMPARED,
    RETRAIN_SEASONS,
    build_model,
    model_config,
    retrain_settings,
)
from streamer.config.models import MODELS as REGISTRY
from streamer.config.registry import section_type
from streamer.config.schema import DriftConfig, IntervalsConfig, RetrainConfig
from streamer.core.records import Event, Forecasts, StepBatch
from streamer.engine.drift import DriftMonitor, DriftResponse
from streamer.engine.pipeline import Pipeline, PipelineSettings
from streamer.engine.retrain import Retrainer
from streamer.engine.scoring import F64, Actuals, Issued, mae_after, mase_scales, score
from streamer.engine.window import WindowBuffer

log = logging.getLogger(__name__)

MODELS = REGISTRY.types()  # every model type a config can name
DEFAULT_MODELS = COMPARED
# The LSTM again, retraining on drift (on_drift: retrain) instead of only recording it.
DRIFT_RETRAIN = "lstm_drift_retrain"


class EvaluateError(ValueError):
    """The file or the options cannot be evaluated; the message says what and why."""


@dataclass(frozen=True)
class Progress:
    """Where a run is: model `index` (1-based) of `models`, `done` of `rows` file rows."""

    model: str
    index: int
    models: int
    done: int
    rows: int


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
    models: tuple[str, ...] = DEFAULT_MODELS
    season: int = 24
    time_unit: TimeUnit | None = None  # None: ISO 8601 unless the times are numbers
    model: cfg.ModelBase | cfg.NetSettings | None = None  # a config's model section
    retrain: RetrainConfig | None = None  # None: the defaults, with a window that fits
    intervals: IntervalsConfig = field(default_factory=IntervalsConfig)
    drift: DriftConfig = field(default_factory=DriftConfig)
    retrain_every: int = 0  # steps of event time between retrains; 0: RETRAIN_SEASONS
    warmup_epochs: int = 20
    max_gap: int = 5
    rows: int | None = None  # use only the first rows of the file
    zscore_rows: int | None = None  # statistics for `standard` from these first rows
    progress: Callable[[Progress], None] | None = None


@dataclass
class ModelRun:
    """What one model produced over the file."""

    actual: Actuals
    issued: Issued
    retrains: list[Event]
    drifts: list[Event]  # drift points
    seconds: float
    weights: dict[str, F64] | None = None  # an ensemble's member weights [n, H]
    served: dict[str, int] = field(default_factory=dict)  # scored forecasts per model tag


@dataclass(frozen=True)
class Report:
    """Per model: the metrics of `scoring.score`, by horizon bucket and per series; the
    runs, for plots and tests."""

    models: dict[str, dict[str, Any]]
    n_forecasts: int
    seconds: float
    runs: dict[str, ModelRun]
    warmup_step: int
    step_ns: int
    rows: int

    def as_json(self) -> dict[str, Any]:
        return {
            "models": self.models,
            "n_forecasts": self.n_forecasts,
            "rows": self.rows,
            "seconds": self.seconds,
        }


# --- the file ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _FileFacts:
    rows: int  # the rows used
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
    """Check the columns, count the rows, and take the z-score statistics."""
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
    if options.rows is not None:
        times = times[: options.rows]
    if len(times) < 4:
        raise EvaluateError(f"{options.data}: {len(times)} data rows; at least 4 are needed")
    warm = max(1, min(len(times) - 1, int(len(times) * options.warmup_fraction)))
    stats_rows = warm if options.zscore_rows is None else min(options.zscore_rows, len(times))
    sums = {t: [0.0, 0.0, 0] for t in options.targets}
    for i, row in enumerate(_rows(options.data)):
        if i >= stats_rows:
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
    """A replay of a wide file's first `facts.rows` rows: each row becomes one event per
    target column, named by the column, with the value standardised if asked."""

    def __init__(
        self,
        replay: ReplaySource,
        options: EvaluateOptions,
        facts: _FileFacts,
        on_row: Callable[[int], None],
    ) -> None:
        self.name = replay.name
        self.replay = replay
        self.options = options
        self.facts = facts
        self.on_row = on_row
        self.done = 0

    def poll(self, max_records: int, timeout: float) -> list[RawRecord]:
        out = []
        targets = self.options.targets
        standard = self.options.normalize == "standard"
        wanted = min(max(1, max_records // len(targets)), self.facts.rows - self.done)
        for record in self.replay.poll(wanted, timeout) if wanted > 0 else []:
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
            self.done += 1
            self.on_row(self.done)
        return out

    def commit(self, positions: Mapping[str, int]) -> None:
        pass

    def seek(self, positions: Mapping[str, int]) -> None:
        pass

    @property
    def exhausted(self) -> bool:
        return self.done >= self.facts.rows or self.replay.exhausted

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

    @property
    def outcomes(self) -> Mapping[str, int]:
        return self.retrainer.outcomes

    def stop(self) -> None:
        pass


# --- running the models -------------------------------------------------------------------


def model_section(name: str, options: EvaluateOptions) -> cfg.ModelBase:
    """The model section evaluated under `name`: the -c config's own when it is that
    type, else the type's defaults with the net's settings from the config. `lstm` is
    the net alone: it forecasts from the warm-up training on, without the cold-start
    gate that has a baseline answer until it beats it live (the `ensemble` weighs it
    against the baselines as it goes)."""
    kind = "lstm" if name == DRIFT_RETRAIN else name
    configured = options.model
    section: cfg.ModelBase
    if isinstance(configured, cfg.ModelBase) and section_type(type(configured)) == kind:
        update: dict[str, Any] = {"horizon": options.horizon}
        if "season_length" in type(configured).model_fields:
            update["season_length"] = options.season
        section = configured.model_copy(update=update)
    else:
        net = configured if isinstance(configured, cfg.NetSettings) else None
        section = model_config(kind, options.horizon, options.season, net)
    if isinstance(section, cfg.LstmModel):  # the net alone, not behind its cold-start gate
        section = section.model_copy(update={"serve_if": "trained", "min_train_steps": 0})
    return section


def fitted_retrain(nets: list[cfg.NetSettings], horizon: int) -> RetrainConfig:
    """The default retrain settings with a window long enough for every net's lags and
    the horizon: the smallest power of two above lags - 1 + H and burn-in + H."""
    defaults = RetrainConfig()
    needed = max([defaults.burn_in + horizon, *(n.lag_count - 1 + horizon for n in nets)])
    return defaults.model_copy(update={"window": max(defaults.window, 2 ** needed.bit_length())})


def _forecaster(
    name: str, options: EvaluateOptions, window: WindowBuffer, warmup_step: int
) -> tuple[Any, _EventTimeSchedule | None]:
    """The model of that name; for one with a net, also its retraining in event time."""
    section = model_section(name, options)
    retrain = options.retrain or RetrainConfig()
    built = build_model(section, retrain)
    if built.net is None or not isinstance(section, cfg.NetSettings):
        return built.forecaster, None
    # Event time: a retrain is never cut short by the wall clock.
    settings = replace(retrain_settings(section, retrain), max_duration=math.inf)
    every = options.retrain_every or RETRAIN_SEASONS * max(options.season, 1)
    schedule = _EventTimeSchedule(
        Retrainer(built.net, settings), window, warmup_step, every, options.warmup_epochs
    )
    return built.forecaster, schedule


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
    on_row: Callable[[int], None],
) -> ModelRun:
    started = time.monotonic()
    window = WindowBuffer(
        step_ns=options.step_ns,
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
            drift.cooldown_seconds(options.step_ns / 1e9),
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
        weights=_weights(forecasts),
        served=_served(forecasts, warmup_step),
    )


def _served(forecasts: list[Forecasts], warmup_step: int) -> dict[str, int]:
    """How many forecasts issued after the warm-up each model tag answered for (a net
    behind a cold-start gate is answered for by its baseline until it serves)."""
    served: Counter[str] = Counter()
    for f in forecasts:
        served[f.model] += int((f.steps >= warmup_step).sum())
    return {tag: n for tag, n in served.items() if n}


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


def _weights(forecasts: list[Forecasts]) -> dict[str, F64] | None:
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
            "mse": float(np.mean(metrics["mse"][:end])),
            "mae": float(np.mean(metrics["mae"][:end])),
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
        issued = run.issued
        metrics = score(
            Actuals(run.actual.series[a], run.actual.steps[a], run.actual.values[a]),
            Issued(
                issued.series[i],
                issued.steps[i],
                issued.yhat[i],
                None if issued.lower is None else issued.lower[i],
                None if issued.upper is None else issued.upper[i],
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


def evaluate(options: EvaluateOptions) -> Report:
    """Run every model over the file and score each (see the module doc)."""
    unknown = [m for m in options.models if m not in (*MODELS, DRIFT_RETRAIN)]
    if unknown:
        hint = "; last_value is the last-value baseline" if "naive" in unknown else ""
        raise EvaluateError(
            f"unknown model(s) {', '.join(unknown)}; choose from "
            f"{', '.join((*MODELS, DRIFT_RETRAIN))}{hint}"
        )
    try:
        sections = {name: model_section(name, options) for name in options.models}
    except ValueError as exc:
        raise EvaluateError(str(exc)) from None
    # (a model section with a net; mypy cannot narrow ModelBase to the NetSettings mixin)
    nets = [cast(cfg.NetSettings, s) for s in sections.values() if isinstance(s, cfg.NetSettings)]
    if options.retrain is None:
        options = replace(options, retrain=fitted_retrain(nets, options.horizon))
    r = options.retrain
    assert r is not None
    if nets:
        if r.window <= r.burn_in + options.horizon:
            raise EvaluateError(
                f"retrain.window ({r.window}) must be more than retrain.burn_in ({r.burn_in}) "
                f"+ the horizon ({options.horizon}); set it in the -c config"
            )
        lags = max(net.lag_count for net in nets)
        if lags and r.window <= lags - 1 + options.horizon:
            raise EvaluateError(
                f"retrain.window ({r.window}) must be more than model.lags ({lags}, two "
                f"seasons unless set) - 1 + the horizon ({options.horizon}); set a longer "
                f"window or fewer lags in the -c config"
            )
    started = time.monotonic()
    facts = _inspect(options)
    time_unit: TimeUnit = options.time_unit or ("s" if facts.numeric_time else "iso8601")
    decoder = _decoder(time_unit)
    warmup_ns = decoder.event_time_ns({"time": facts.warmup_time})
    if warmup_ns is None:
        raise EvaluateError(
            f"{options.data}: {options.time_col} value {facts.warmup_time!r} is not a time "
            f"({time_unit}); set --time-unit"
        )
    warmup_step = warmup_ns // options.step_ns
    runs = {}
    for index, name in enumerate(options.models, start=1):

        def on_row(done: int, name: str = name, index: int = index) -> None:
            if options.progress:
                options.progress(Progress(name, index, len(options.models), done, facts.rows))

        runs[name] = _run_model(name, options, facts, decoder, warmup_step, on_row)
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
    return Report(
        models=models,
        n_forecasts=max(m["n_forecasts"] for m in models.values()),
        seconds=round(time.monotonic() - started, 3),
        runs=runs,
        warmup_step=warmup_step,
        step_ns=options.step_ns,
        rows=facts.rows,
    )
