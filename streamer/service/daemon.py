"""Build the pipeline a config describes, and run it until a signal or the end of data."""

from __future__ import annotations

import _thread
import gc
import logging
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

from models.base import ScoresMembers
from streamer.config.build import Built, build, schedule_interval
from streamer.config.schema import StreamerConfig
from streamer.core.errors import ConfigError, ConfigProblem, SinkUnusableError
from streamer.engine.pipeline import Pipeline
from streamer.engine.reporting import Counters
from streamer.engine.snapshot import Snapshot, WriterStatus
from streamer.service.cli_common import path_problem
from streamer.service.cli_model import checkpoint_settings
from streamer.service.health import HttpEndpoint, Read
from streamer.service.metrics import Metrics
from streamer.service.streams import run_pipelines, total

log = logging.getLogger(__name__)


SWITCH_INTERVAL = 0.0005  # seconds a thread may hold the interpreter when another waits


def tune_runtime(switch_interval: float = SWITCH_INTERVAL) -> None:
    """Tune the interpreter for a long-running stream processor with a few busy threads.

    The cyclic garbage collector: every batch makes millions of short-lived objects
    (records, dicts, lines) and few reference cycles; at the default thresholds the
    collector runs hundreds of times a second and rescans every long-lived object.
    Freezing what start-up made and collecting the youngest generation every 50,000
    allocations instead of 700 gave about 20% more events/s in
    bench/pipeline_throughput.py.

    The switch interval: numpy lets go of the interpreter during each large array
    operation of a batch, and at Python's default of 5 ms the pipeline thread then waits
    up to that long to get it back from the sink writer's thread, each time. A shorter
    interval hands it back sooner (`--switch-intervals` in bench/end_to_end.py).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    sys.setswitchinterval(switch_interval)


def _http(config: StreamerConfig, read: Read, metrics: Metrics) -> HttpEndpoint:
    bind = config.http.bind
    stall_after = config.http.stall_after.total_seconds()
    try:
        endpoint = HttpEndpoint(bind, read, metrics, stall_after)
    except OSError as exc:
        raise ConfigError(
            "http",
            [ConfigProblem("http.bind", f"cannot listen on {bind}: {exc.strerror or exc}")],
        ) from None
    return endpoint.start()


@dataclass(frozen=True)
class RunResult:
    """What a run did; for a config of several streams, each stream's under `streams`
    (and the totals above)."""

    counters: Counters
    series: int
    restored: bool
    model_errors: dict[str, float] = field(default_factory=dict)  # MSE per member, if any
    streams: dict[str, RunResult] = field(default_factory=dict)


class StoppedAtOnce(KeyboardInterrupt):
    """The stop did not wait for the batch, the flush and the checkpoint; says why."""


def _stop_on_signals(stop: threading.Event, timeout: float) -> None:
    """SIGINT/SIGTERM set `stop`; a second one, or `timeout` seconds after the first,
    stops at once (StoppedAtOnce in the main thread)."""
    overdue: list[str] = []

    def give_up() -> None:
        log.error(
            "shutdown took longer than shutdown_timeout (%gs): stopping at once; "
            "the last checkpoint stands",
            timeout,
        )
        overdue.append(f"shutdown took longer than shutdown_timeout ({timeout:g}s)")
        _thread.interrupt_main()  # runs on_signal (SIGINT) in the main thread

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if overdue:
            raise StoppedAtOnce(overdue[0])
        if stop.is_set():
            raise StoppedAtOnce(f"a second signal, {name}")
        log.info("%s: stopping after this batch (again to stop at once)", name)
        stop.set()
        watchdog = threading.Timer(timeout, give_up)
        watchdog.daemon = True
        watchdog.start()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)


def run(config: StreamerConfig, stop: threading.Event | None = None) -> RunResult:
    """Run the daemon until SIGINT/SIGTERM or the end of data: one pipeline per stream
    of the config (one for a config without `streams`), each on a thread of its own.

    On the first signal each loop finishes its batch, flushes the sinks, checkpoints and
    commits. If that takes longer than `shutdown_timeout` (a sink that does not answer),
    or on a second signal, it stops at once (KeyboardInterrupt): the last checkpoint
    stands, and what came after it is read again on the next start.
    """
    stop = stop or threading.Event()
    configs = config.stream_configs()
    metrics = Metrics()
    built = _build_all(configs, metrics)
    pipelines = {name: b.pipeline for name, b in built.items()}
    reads = {name: _reader(p) for name, p in pipelines.items()}
    metrics.collect_from({name: read_snapshot(p) for name, p in pipelines.items()})
    _stop_on_signals(stop, config.shutdown_timeout.total_seconds())
    tune_runtime()
    endpoint: HttpEndpoint | None = None
    at_once = False
    try:
        restored = {}
        for name, (pipeline, retrainer) in built.items():
            if pipeline.checkpoints is not None:
                pipeline.checkpoints.made_for = checkpoint_settings(configs[name])
            restored[name] = pipeline.restore()
            stream = configs[name]
            log.info(
                "started: %s%s%s",
                f"stream {name}: " if name else "",
                stream.summary(),
                " (continuing from checkpoint)" if restored[name] else "",
            )
            if retrainer is not None:
                schedule = stream.retrain.schedule
                retrainer.start_schedule(schedule, schedule_interval(schedule))
        if config.http.enabled:
            endpoint = _http(config, reads[""] if "" in reads else _all(reads), metrics)
        counters = run_pipelines(pipelines, stop)
        results = {
            name: _result(p, counters[name], restored[name]) for name, p in pipelines.items()
        }
        return results[""] if "" in results else _total(results)
    except KeyboardInterrupt:
        at_once = True
        raise
    finally:
        if endpoint is not None:
            endpoint.stop()
        for pipeline in pipelines.values():
            if at_once:
                pipeline.abandon()
            else:
                pipeline.close()


def _build_all(configs: dict[str, StreamerConfig], metrics: Metrics) -> dict[str, Built]:
    """Each stream's pipeline; those built are closed again if a later one fails."""
    built: dict[str, Built] = {}
    try:
        for name, stream in configs.items():
            try:
                built[name] = build(stream, observer=metrics, stream=name)
            except OSError as exc:  # a file sink's or dead letter's path
                raise SinkUnusableError(f"{_path_key(stream, exc)}: {path_problem(exc)}") from None
    except BaseException:
        for made in built.values():
            made.pipeline.close()
        raise
    return built


def _path_key(config: StreamerConfig, exc: OSError) -> str:
    """The config key of the path an OSError is about (that path, or a directory of it)."""
    named = str(exc.filename or "")
    dead_letter = config.pipeline.dead_letter
    paths = {f"sinks[{i}].path": getattr(s, "path", None) for i, s in enumerate(config.sinks)}
    paths["pipeline.dead_letter.path"] = getattr(dead_letter, "path", None)
    found = (k for k, path in paths.items() if named and str(path or "").startswith(named))
    return next(found, "a path")


def read_snapshot(pipeline: Pipeline) -> Callable[[], Snapshot]:
    return lambda: pipeline.snapshot


def _reader(pipeline: Pipeline) -> Callable[[], tuple[Snapshot, WriterStatus]]:
    return lambda: (pipeline.snapshot, pipeline.writer.status)


def _all(reads: dict[str, Callable[[], tuple[Snapshot, WriterStatus]]]) -> Read:
    return lambda: {name: read() for name, read in reads.items()}


def _result(pipeline: Pipeline, counters: Counters, restored: bool) -> RunResult:
    forecaster = pipeline.forecaster
    errors = forecaster.member_errors() if isinstance(forecaster, ScoresMembers) else {}
    return RunResult(counters, pipeline.window.live_series, restored, errors)


def _total(results: dict[str, RunResult]) -> RunResult:
    counters = total({name: r.counters for name, r in results.items()})
    series = sum(r.series for r in results.values())
    restored = all(r.restored for r in results.values())
    return RunResult(counters, series, restored, {}, results)
