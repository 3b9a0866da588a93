"""`streamer train`: a warm start from history, so that a new deployment does not serve a
baseline until its model has seen `min_train_steps` live.

The file is replayed through the daemon's own path with the config's window, model,
intervals and drift: the model trains on the first rows (all but `holdout_fraction`),
then forecasts the held-out rows one step at a time, retraining on its schedule in event
time, as `evaluate` does. Those forecasts give the held-out error. A last training on
everything follows, and the state is written where the config's checkpoint lives:
weights, scalers and each series' state, windows, intervals and drift references. It
has no source positions and no sink state, so `streamer run` continues from it with
its sources where they start and its sinks fresh.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from connectors.codecs import TimeUnit
from connectors.memory import MemorySink
from connectors.replay import ReplaySource
from models.outcomes import Outcomes
from streamer.config import schema as cfg
from streamer.config.drift import build_drift
from streamer.config.models import RETRAIN_SEASONS, build_model, retrain_settings
from streamer.core.records import NS_PER_S, SeriesKind
from streamer.engine.checkpoint import CheckpointStore
from streamer.engine.pipeline import Pipeline, PipelineSettings
from streamer.engine.retrain import Retrainer
from streamer.engine.window import WindowBuffer
from streamer.evaluation import collect
from streamer.evaluation.evaluate import ROWS_PER_BATCH, run_model, warmup_step_of
from streamer.evaluation.options import EvaluateError, EvaluateOptions, ModelRun, Progress, Report
from streamer.evaluation.retrain_schedule import EventTimeSchedule
from streamer.evaluation.wide_replay import WideReplay, inspect, make_decoder

TRAINED = "trained"  # the name of the config's model in the report
REFERENCE = "last_value"  # what its held-out error is compared with


@dataclass(frozen=True)
class TrainOptions:
    """What `streamer train` reads and how it trains (the command line's flags)."""

    data: Path
    time_col: str
    targets: list[str]
    time_unit: TimeUnit | None = None
    rows: int | None = None
    holdout_fraction: float = 0.2
    epochs: int = 20  # of the first training, and of the last one on everything
    retrain_every: int = 0  # steps of event time; 0: RETRAIN_SEASONS seasons
    kind: SeriesKind | None = None  # None: the kind of the config's sources (all one)
    replace: bool = False  # overwrite a checkpoint that is already there
    made_for: dict[str, Any] | None = None  # the settings the checkpoint is written for
    progress: Callable[[Progress], None] | None = None  # where each replay is
    say: Callable[[str], None] = lambda text: None  # what is being done (the last training)


@dataclass(frozen=True)
class Trained:
    """What training did: the held-out report, the checkpoint written and its id."""

    report: Report
    checkpoint: Path
    checkpoint_id: int
    version: int  # of the weights written (0: the model has no net)


def train(config: cfg.StreamerConfig, options: TrainOptions) -> Trained:
    """Train the config's model on the file and write its checkpoint (see module doc)."""
    if not config.checkpoint.enabled:
        raise EvaluateError(
            "checkpoint.enabled is false: there is nowhere to write the model for `streamer "
            "run` to start from; enable it (and set checkpoint.path)"
        )
    path = config.checkpoint.path
    if not options.replace and path.exists() and CheckpointStore(path).load() is not None:
        raise EvaluateError(
            f"{path} already holds a checkpoint, which `streamer run` continues from; "
            "--replace to overwrite it with the trained model"
        )
    started = time.monotonic()
    evaluation = _evaluation(config, options)
    facts = inspect(evaluation)
    time_unit: TimeUnit = options.time_unit or ("s" if facts.numeric_time else "iso8601")
    decoder = make_decoder(time_unit, _kind(config, options))
    warmup_step = warmup_step_of(evaluation, facts, decoder)

    pipeline, schedule, sink = _pipeline(config, options, evaluation, warmup_step, facts, decoder)
    trained = _replay(pipeline, sink, schedule, warmup_step, started)
    reference = run_model(
        REFERENCE,
        evaluation,
        facts,
        decoder,
        warmup_step,
        _on_row(options, REFERENCE, 2, facts.rows),
    )
    runs = {TRAINED: trained, REFERENCE: reference}
    models = collect.score_runs(runs, evaluation, warmup_step)
    if schedule is not None:
        options.say(f"last training, on all {facts.rows} rows ({options.epochs} epochs) ...")
    version = _last_training(schedule, options.epochs)
    if schedule is not None and version == 0:
        raise EvaluateError(_untrained(config, facts.rows, schedule.retrainer))
    checkpoint_id = _write(pipeline, path, config.checkpoint.keep, options.made_for)
    report = Report(
        models=models,
        n_forecasts=models[TRAINED]["n_forecasts"],
        seconds=round(time.monotonic() - started, 3),
        runs=runs,
        warmup_step=warmup_step,
        step_ns=evaluation.step_ns,
        rows=facts.rows,
    )
    return Trained(report, path, checkpoint_id, version)


def _kind(config: cfg.StreamerConfig, options: TrainOptions) -> SeriesKind:
    """The kind of series the file holds: as asked, else the config's sources' kind."""
    if options.kind is not None:
        return options.kind
    kinds = {source.kind for source in config.sources}
    if len(kinds) > 1:
        raise EvaluateError(
            "the config's sources read both prices and sensor readings: say which the file "
            "holds with --kind price or --kind sensor"
        )
    return kinds.pop()


def _on_row(options: TrainOptions, name: str, index: int, rows: int) -> Callable[[int], None]:
    """What a replay calls after each file row: the progress, as replay `index` of 2."""

    def on_row(done: int) -> None:
        if options.progress:
            options.progress(Progress(name, index, 2, done, rows))

    return on_row


def _evaluation(config: cfg.StreamerConfig, options: TrainOptions) -> EvaluateOptions:
    """The file and the config as `evaluate` reads them: the trained rows are its warm-up."""
    if not 0 < options.holdout_fraction < 1:
        raise EvaluateError(f"--holdout-fraction must be in (0, 1), got {options.holdout_fraction}")
    season = getattr(config.model, "season_length", 24)
    return EvaluateOptions(
        data=options.data,
        time_col=options.time_col,
        targets=options.targets,
        step_ns=round(config.window.step.total_seconds() * NS_PER_S),
        horizon=config.model.horizon,
        warmup_fraction=1 - options.holdout_fraction,
        models=(TRAINED, REFERENCE),
        season=season,
        time_unit=options.time_unit,
        model=config.model,
        retrain=config.retrain,
        intervals=config.intervals,
        drift=config.drift,
        retrain_every=options.retrain_every,
        warmup_epochs=options.epochs,
        max_gap=config.window.max_gap,
        rows=options.rows,
    )


def _pipeline(
    config: cfg.StreamerConfig,
    options: TrainOptions,
    evaluation: EvaluateOptions,
    warmup_step: int,
    facts: Any,
    decoder: Any,
) -> tuple[Pipeline, EventTimeSchedule | None, MemorySink]:
    """The config's window, model, outcomes and drift over the file, retraining in event
    time; its outputs kept in memory to be scored."""
    w = config.window
    window = WindowBuffer(
        step_ns=evaluation.step_ns,
        aggregation=w.aggregation,
        max_gap=w.max_gap,
        idle_close_after=math.inf,
        max_series=max(w.max_series, len(options.targets)),
    )
    built = build_model(config.model, config.retrain)
    schedule = _schedule(config, built.net, window, options, evaluation, warmup_step)
    drift, on_drift = build_drift(
        config, built.forecaster, schedule.retrainer if schedule else None
    )

    def step_of(at: Any) -> int | None:
        ns = decoder.event_time_ns({"time": at})
        return None if ns is None else ns // evaluation.step_ns

    cut = (lambda: schedule.due_step) if schedule is not None else (lambda: None)

    replay = ReplaySource("train", options.data)
    source = WideReplay(
        replay, evaluation, facts, _on_row(options, TRAINED, 1, facts.rows), step_of, cut
    )
    sink = MemorySink()
    rows = 1 if on_drift is not None and config.drift.on_drift == "retrain" else ROWS_PER_BATCH
    pipeline = Pipeline(
        sources=[(source, decoder)],
        window=window,
        forecaster=built.forecaster,
        sinks=[sink],
        retrainer=schedule,
        outcomes=Outcomes(config.model.horizon, config.intervals.coverage, config.intervals.window),
        drift=drift,
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
    return pipeline, schedule, sink


def _schedule(
    config: cfg.StreamerConfig,
    net: Any,
    window: WindowBuffer,
    options: TrainOptions,
    evaluation: EvaluateOptions,
    warmup_step: int,
) -> EventTimeSchedule | None:
    """For a model with a net: its training at the end of the trained rows, then its
    retraining in event time (never cut short by the clock)."""
    if net is None or not isinstance(config.model, cfg.NetSettings):
        return None
    settings = replace(retrain_settings(config.model, config.retrain), max_duration=math.inf)
    every = options.retrain_every or RETRAIN_SEASONS * max(evaluation.season, 1)
    return EventTimeSchedule(Retrainer(net, settings), window, warmup_step, every, options.epochs)


def _replay(
    pipeline: Pipeline,
    sink: MemorySink,
    schedule: EventTimeSchedule | None,
    warmup_step: int,
    started: float,
) -> ModelRun:
    """Run the file through; what came out, as `evaluate` scores it."""
    pipeline.run(threading.Event())
    observed = [o.observed for o in sink.outputs if len(o.observed)]
    forecasts = [o.forecasts for o in sink.outputs if len(o.forecasts)]
    if not observed:
        raise EvaluateError("the file gave no values to train on")
    horizon = pipeline.forecaster.horizon
    return ModelRun(
        actual=collect.actuals(observed),
        issued=collect.issued(forecasts, horizon),
        retrains=schedule.events if schedule else [],
        drifts=[e for o in sink.outputs for e in o.events if e.measurement == "drift"],
        seconds=time.monotonic() - started,
        served=collect.served(forecasts, warmup_step),
    )


def _last_training(schedule: EventTimeSchedule | None, epochs: int) -> int:
    """Train once more on every stored window (the held-out rows too); the version now."""
    if schedule is None:
        return 0
    retrainer = schedule.retrainer
    settings = retrainer.settings
    retrainer.settings = replace(settings, epochs=epochs, min_new_steps=1)
    try:
        retrainer.run_now("history")
    finally:
        retrainer.settings = settings
    return int(retrainer.model.version)


def _untrained(config: cfg.StreamerConfig, rows: int, retrainer: Retrainer) -> str:
    """Why the net is still untrained: its trainings failed, none did better than the
    untrained net, or (none ran) too few steps for two training windows."""
    first = "the net was not trained, so no checkpoint was written: "
    last = retrainer.last
    if retrainer.outcomes["failed"]:
        return first + "its training failed (the log above says how)"
    if last is not None and not last.promoted:
        return first + (
            f"no training did better than the untrained net on the held-out windows "
            f"(loss {last.loss_before:.4g} -> {last.loss_after:.4g}), and retrain.promote "
            "is if_better. Train longer (--epochs), or on a longer history"
        )
    r, horizon = config.retrain, config.model.horizon
    stride = max(1, r.window - r.burn_in - horizon)
    return first + (
        f"it learns from windows of retrain.window ({r.window}) steps and needs 2 of them; "
        f"a series gives its first after {r.window} steps in a row and one more every "
        f"{stride} steps after that, and the file gave {rows} rows. Give a longer history, "
        "or a smaller retrain.window"
    )


def _write(pipeline: Pipeline, path: Path, keep: int, made_for: dict[str, Any] | None) -> int:
    """The pipeline's state as a checkpoint with no positions and no sink state, marked
    as made for `made_for` (`CheckpointStore`)."""
    state = pipeline.state_dict(with_sinks=False)
    state.update(sinks=None, positions={}, idle_clock=None)
    path.parent.mkdir(parents=True, exist_ok=True)
    store = CheckpointStore(path, keep, made_for)
    try:
        return store.save(state)
    finally:
        store.close()
