"""`streamer evaluate`: prequential (test-then-train) evaluation of a CSV file.

Each model runs through the daemon's own path: a replay of the file, the decoder, the
window, the forecaster (built from the same table as the daemon's, `streamer.config.models`),
the pipeline and a sink that keeps what it is given. A micro-batch holds up to
`ROWS_PER_BATCH` file rows (a time and one value per target column), and every model
sees the data exactly as live, one step at a time: the models step through a batch rank
by rank, so a forecast issued at step t is made from the values up to t only, and is
scored against values read later. A batch ends where a retrain is due (and a model that
retrains on drift gets one row a batch), so that retrains come at the same rows as with
one row a batch, and every forecast is the same. A model with a net trains on the first
`warmup_fraction` of the rows when the replay reaches their end, then retrains on a
schedule counted in event time, each time only on what the replay has delivered; its
linear highway learns from every step as it arrives, as it does live.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, cast

from connectors.codecs import Decoder, TimeUnit
from connectors.memory import MemorySink
from connectors.replay import ReplaySource
from models.outcomes import Outcomes
from streamer.config import schema as cfg
from streamer.config.drift import make_detector
from streamer.config.models import RETRAIN_SEASONS, build_model, model_config, retrain_settings
from streamer.config.registry import section_type
from streamer.config.schema import RetrainConfig
from streamer.engine.drift import DriftMonitor
from streamer.engine.drift_response import DriftResponse
from streamer.engine.pipeline import Pipeline, PipelineSettings
from streamer.engine.retrain import Retrainer
from streamer.engine.window import WindowBuffer
from streamer.evaluation import collect
from streamer.evaluation.options import (
    DEFAULT_MODELS,
    DRIFT_RETRAIN,
    MODELS,
    EvaluateError,
    EvaluateOptions,
    ModelRun,
    Progress,
    Report,
)
from streamer.evaluation.retrain_schedule import EventTimeSchedule
from streamer.evaluation.wide_replay import (
    FileFacts,
    WideReplay,
    content,
    inspect,
    make_decoder,
)

__all__ = [
    "DEFAULT_MODELS",
    "DRIFT_RETRAIN",
    "MODELS",
    "EvaluateError",
    "EvaluateOptions",
    "ModelRun",
    "Progress",
    "Report",
    "evaluate",
    "fitted_retrain",
    "model_section",
    "run_model",
    "warmup_step_of",
]

log = logging.getLogger(__name__)

ROWS_PER_BATCH = 256  # file rows a micro-batch holds at most


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
    return RetrainConfig().fitted(horizon, max([0, *(n.lag_count for n in nets)]))


def _forecaster(
    name: str, options: EvaluateOptions, window: WindowBuffer, warmup_step: int
) -> tuple[Any, EventTimeSchedule | None]:
    """The model of that name; for one with a net, also its retraining in event time."""
    section = model_section(name, options)
    retrain = options.retrain or RetrainConfig()
    built = build_model(section, retrain)
    if built.net is None or not isinstance(section, cfg.NetSettings):
        return built.forecaster, None
    # Event time: a retrain is never cut short by the wall clock.
    settings = replace(retrain_settings(section, retrain), max_duration=math.inf)
    every = options.retrain_every or RETRAIN_SEASONS * max(options.season, 1)
    schedule = EventTimeSchedule(
        Retrainer(built.net, settings), window, warmup_step, every, options.warmup_epochs
    )
    return built.forecaster, schedule


def _window(options: EvaluateOptions) -> WindowBuffer:
    return WindowBuffer(
        step_ns=options.step_ns,
        max_gap=options.max_gap,
        idle_close_after=math.inf,
        max_series=len(options.targets),
    )


def _drift(
    name: str, options: EvaluateOptions, forecaster: Any, schedule: EventTimeSchedule | None
) -> tuple[DriftMonitor, DriftResponse | None]:
    """The drift monitor, and for `DRIFT_RETRAIN` the response that retrains on drift."""
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
    return monitor, on_drift


def _pipeline(
    options: EvaluateOptions,
    source: tuple[WideReplay, Decoder],
    window: WindowBuffer,
    forecaster: Any,
    schedule: EventTimeSchedule | None,
    drift: tuple[DriftMonitor, DriftResponse | None],
    sink: MemorySink,
) -> Pipeline:
    """The daemon's pipeline over one replay, a step per file row, in event time only:
    up to ROWS_PER_BATCH rows a batch, one where drift may ask for a retrain (a batch
    boundary is where it would run)."""
    monitor, on_drift = drift
    rows = 1 if on_drift is not None else ROWS_PER_BATCH
    return Pipeline(
        sources=[source],
        window=window,
        forecaster=forecaster,
        sinks=[sink],
        retrainer=schedule,
        outcomes=Outcomes(options.horizon, options.intervals.coverage, options.intervals.window),
        drift=monitor,
        on_drift=on_drift,
        settings=PipelineSettings(
            max_batch=len(options.targets) * rows,
            max_wait=0.0,
            checkpoint_every=None,
            stop_at_end=True,
            progress_every=math.inf,
            rejected_log_every=math.inf,
        ),
        clock=lambda: 0.0,
    )


def run_model(
    name: str,
    options: EvaluateOptions,
    facts: FileFacts,
    decoder: Decoder,
    warmup_step: int,
    on_row: Callable[[int], None],
) -> ModelRun:
    started = time.monotonic()
    window = _window(options)
    forecaster, schedule = _forecaster(name, options, window, warmup_step)
    drift = _drift(name, options, forecaster, schedule)
    sink = MemorySink()
    replay = ReplaySource(f"evaluate-{name}", options.data)

    def step_of(time: Any) -> int | None:
        at = decoder.event_time_ns({"time": time})
        return None if at is None else at // options.step_ns

    cut = (lambda: schedule.due_step) if schedule is not None else (lambda: None)
    source = (WideReplay(replay, options, facts, on_row, step_of, cut), decoder)
    pipeline = _pipeline(options, source, window, forecaster, schedule, drift, sink)
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
        actual=collect.actuals(observed),
        issued=collect.issued(forecasts, options.horizon),
        retrains=schedule.events if schedule else [],
        drifts=[e for o in sink.outputs for e in o.events if e.measurement == "drift"],
        seconds=time.monotonic() - started,
        weights=collect.weights(forecasts),
        served=collect.served(forecasts, warmup_step),
    )


# --- the whole evaluation -----------------------------------------------------------------


def _nets(options: EvaluateOptions) -> list[cfg.NetSettings]:
    """The model sections with a net, once every model named is known and buildable."""
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
    return [cast(cfg.NetSettings, s) for s in sections.values() if isinstance(s, cfg.NetSettings)]


def _with_retrain(options: EvaluateOptions, nets: list[cfg.NetSettings]) -> EvaluateOptions:
    """The options with retrain settings (fitted when not given), checked against the nets."""
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
    return options


def warmup_step_of(options: EvaluateOptions, facts: FileFacts, decoder: Decoder) -> int:
    """The step of the first row after the warm-up: forecasts from it on are scored."""
    warmup_ns = decoder.event_time_ns({"time": facts.warmup_time})
    if warmup_ns is None:
        raise EvaluateError(
            f"{options.data}: {options.time_col} value {facts.warmup_time!r} is not a time "
            f"({decoder.time_unit}); set --time-unit"
        )
    return warmup_ns // options.step_ns


def _on_row(options: EvaluateOptions, name: str, index: int, rows: int) -> Callable[[int], None]:
    """What a run calls after each file row: the options' progress, if any."""

    def on_row(done: int) -> None:
        if options.progress:
            options.progress(Progress(name, index, len(options.models), done, rows))

    return on_row


def evaluate(options: EvaluateOptions) -> Report:
    """Run every model over the file and score each (see the module doc)."""
    options = _with_retrain(options, _nets(options))
    started = time.monotonic()
    facts = inspect(options)
    time_unit: TimeUnit = options.time_unit or ("s" if facts.numeric_time else "iso8601")
    decoder = make_decoder(time_unit)
    warmup_step = warmup_step_of(options, facts, decoder)
    runs = {
        name: run_model(
            name, options, facts, decoder, warmup_step, _on_row(options, name, index, facts.rows)
        )
        for index, name in enumerate(options.models, start=1)
    }
    models = collect.score_runs(runs, options, warmup_step)
    if not any(m["n_forecasts"] for m in models.values()):
        raise EvaluateError(_nothing_scored(options, facts.rows))
    return Report(
        models=models,
        n_forecasts=max(m["n_forecasts"] for m in models.values()),
        seconds=round(time.monotonic() - started, 3),
        runs=runs,
        warmup_step=warmup_step,
        step_ns=options.step_ns,
        rows=facts.rows,
    )


def _nothing_scored(options: EvaluateOptions, rows: int) -> str:
    """Why no forecast could be scored: no number to read, every row at one time, or
    too few steps after the warm-up for a forecast to meet a later value."""
    times, numbers = content(options, rows)
    if not numbers:
        why = f"no value of {', '.join(options.targets)} in its {rows} rows is a number"
    elif times == 1:
        why = (
            f"its {rows} rows all have the same time, and a forecast is scored against a "
            "value at a later step; give rows at different times"
        )
    else:
        why = (
            f"its {times} times fall in too few steps of --step after the warm-up for a "
            "forecast issued there to meet a later value; give a longer file, a shorter "
            "--step or a smaller --warmup-fraction"
        )
    return f"{options.data}: nothing could be scored: {why}"
