"""Several pipelines in one daemon, one per stream of the config: each loop on a thread
of its own, one stop for all, and the run's totals."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Mapping

from streamer.core.threads import thread_name
from streamer.engine.pipeline import Pipeline
from streamer.engine.reporting import Counters

log = logging.getLogger(__name__)

JOIN_EVERY = 0.2  # seconds: the main thread wakes this often, so signals are handled


def run_pipelines(pipelines: Mapping[str, Pipeline], stop: threading.Event) -> dict[str, Counters]:
    """Run each pipeline until `stop` (or, with stop_at_end, the end of its data); one
    alone runs on this thread. A loop that fails sets `stop` for the others, which
    finish their batch and checkpoint as on a signal, and its error is raised here."""
    if len(pipelines) == 1:
        ((name, pipeline),) = pipelines.items()
        return {name: pipeline.run(stop)}
    done: dict[str, Counters] = {}
    failed: list[BaseException] = []

    def loop(name: str, pipeline: Pipeline) -> None:
        try:
            done[name] = pipeline.run(stop)
        except BaseException as exc:
            log.error("stream %s failed: %s; stopping the others", name, exc)
            failed.append(exc)
            stop.set()

    threads = [
        threading.Thread(target=loop, args=item, name=thread_name("stream", item[0]), daemon=True)
        for item in pipelines.items()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(JOIN_EVERY)
    if failed:
        raise failed[0]
    return done


def total(counters: Mapping[str, Counters]) -> Counters:
    """The streams' counters added up."""
    out = Counters(rejected=Counter())
    for c in counters.values():
        out.events_in += c.events_in
        out.observations += c.observations
        out.rejected.update(c.rejected)
        out.steps_closed += c.steps_closed
        out.forecasts_out += c.forecasts_out
        out.batches += c.batches
        out.checkpoints += c.checkpoints
    return out
