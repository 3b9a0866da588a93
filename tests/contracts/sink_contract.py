"""What every `connectors.base.Sink` promises, checked through a `SinkHarness`.

    write      what was written (and the sink closed) is what the destination holds:
               the output's points, as the sink itself renders them
    flush      makes what was written visible to another reader, the sink still open
    restore    write A, checkpoint, write B, restore the checkpoint, write B again: the
               destination holds A and B, once each for an exact sink, at least once
               each (and nothing else) for an at-least-once one
    close      twice is harmless
    reconnect  (where the harness can cut the connection) a write during an outage is a
               SinkError, and the same output written after it lands
    errors     an unreachable destination is an outage (SinkError, not unusable),
               wrong credentials make check() raise SinkUnusableError naming the cause,
               and a point the destination refuses raises SinkRejectedError with the
               refused lines and why, while the rest of its output is written

Each check is a function of a harness; CONTRACT lists those every sink keeps.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import NamedTuple, Protocol

import numpy as np
import pytest

from connectors.base import Output, Sink
from connectors.line_protocol import parse_line
from streamer.core.errors import SinkError, SinkRejectedError, SinkUnusableError
from streamer.core.records import Event, ForecastErrors, Forecasts, StepBatch

STEP = 1_000_000_000
T = 1_790_000_000  # the first step (seconds since the epoch: September 2026)
FAIL_WITHIN = 15.0  # seconds a sink may take to report an unreachable destination


class SinkHarness(Protocol):
    """Opens sinks on one destination and reads what it holds."""

    exact: bool
    """A rewrite after a restore leaves exactly one copy of each point (InfluxDB keys,
    a file truncated back); False for at-least-once destinations (a Kafka topic)."""

    def open(self) -> Sink:
        """A fresh sink writing to the destination."""
        ...

    def read(self) -> Counter[str]:
        """What the destination holds, each point as a string, with its multiplicity."""
        ...

    def render(self, output: Output) -> list[str]:
        """The strings `read` returns once `output` is written (the sink's own rendering)."""
        ...


class Refusal(NamedTuple):
    """An output the destination refuses part of: the lines refused and the part of
    the output that is written all the same."""

    output: Output
    written: Output
    refused: list[str]


class FailingSinkHarness(SinkHarness, Protocol):
    """A destination that can also be made to fail: each way is None where it cannot."""

    unreachable: Callable[[], Sink] | None
    """A sink whose destination does not answer (with short timeouts, no retries)."""
    wrong_credentials: tuple[Callable[[], Sink], str] | None
    """A sink with credentials the destination refuses, and the cause its error names."""
    refusal: Callable[[Output], Refusal] | None
    """What the destination refuses once the given output was written."""


class CuttableSinkHarness(SinkHarness, Protocol):
    """A destination whose connection to one sink can be cut (a proxy between them:
    the server stays up for everyone else)."""

    def open_cuttable(self) -> Sink:
        """A sink through the cuttable connection, with no retries of its own."""
        ...

    def cut(self) -> None:
        """Drop that sink's connections and refuse new ones until restore()."""
        ...

    def restore(self) -> None: ...


def sample_output(series: list[str], step: int = T, seed: int = 0, model: str = "lstm") -> Output:
    """One closed step per series at `step`, forecasts for 3 horizons with intervals,
    the errors of earlier forecasts, and one event: every kind of point a sink writes."""
    rng = np.random.default_rng(seed)
    n = len(series)
    names = np.array(series, dtype=object)
    steps = np.full(n, step, dtype=np.int64)
    observed = StepBatch(
        slots=np.arange(n),
        series=names,
        kinds=np.array(["price"] * n, dtype=object),
        steps=steps,
        values=rng.normal(100, 5, (n, 1)).round(3),
        filled=np.zeros(n, bool),
        reset=np.zeros(n, bool),
        step_ns=STEP,
    )
    yhat = rng.normal(100, 5, (n, 3)).round(3)
    forecasts = Forecasts(
        names, steps, yhat, model, STEP, lower=yhat - 2.0, upper=yhat + 2.5, version=3
    )
    errors = ForecastErrors(
        series=names,
        slots=np.arange(n),
        steps=steps,
        horizon=np.ones(n, dtype=np.int64),
        error=rng.normal(0, 1, n).round(3),
        scaled=np.ones(n),
        model=np.array([model] * n, dtype=object),
        step_ns=STEP,
    )
    drift = Event("drift", {"series": series[0], "detector": "adwin"}, {"value": 1.5}, step * STEP)
    return Output(observed, forecasts, (drift,), errors)


def exploded(line: str) -> list[str]:
    """A line of line protocol as one string per field, tags sorted: the form in which
    a store of fields (InfluxDB) gives points back."""
    point = parse_line(line)
    head = ",".join([point.measurement, *(f"{k}={v}" for k, v in sorted(point.tags.items()))])
    return [f"{head} {k}={v!r} {point.time}" for k, v in sorted(point.fields.items())]


A = sample_output(["s0", "a b,c=d"], seed=1)
B = sample_output(["s1", "s2", "s3"], step=T + 5, seed=2)


def written_output_is_read_back(harness: SinkHarness) -> None:
    sink = harness.open()
    sink.check()
    sink.write(A)
    sink.close()
    expected = Counter(harness.render(A))
    assert expected, "the output renders to nothing"
    assert harness.read() == expected


def flush_makes_written_output_visible(harness: SinkHarness) -> None:
    sink = harness.open()
    try:
        sink.write(A)
        sink.flush()
        assert harness.read() == Counter(harness.render(A))
    finally:
        sink.close()


def rewrite_after_restore_leaves_one_copy(harness: SinkHarness) -> None:
    sink = harness.open()
    try:
        sink.start_fresh()
        sink.write(A)
        state = sink.state_dict()
        sink.write(B)  # written, then the daemon dies before its next checkpoint
        sink.load_state_dict(state)
        sink.write(B)  # the replay after the restore
        sink.flush()
    finally:
        sink.close()
    _holds_once_each(harness, A, B)


def _holds_once_each(harness: SinkHarness, *outputs: Output) -> None:
    """The destination holds these outputs' points: once each for an exact sink, at
    least once each (and nothing else) for an at-least-once one."""
    got = harness.read()
    expected = Counter(point for output in outputs for point in harness.render(output))
    if harness.exact:
        assert got == expected
    else:
        assert set(got) == set(expected)
        assert all(got[point] >= count for point, count in expected.items())


def closing_twice_is_harmless(harness: SinkHarness) -> None:
    sink = harness.open()
    sink.write(A)
    sink.close()
    sink.close()
    assert harness.read() == Counter(harness.render(A))


CONTRACT: list[Callable[[SinkHarness], None]] = [
    written_output_is_read_back,
    flush_makes_written_output_visible,
    rewrite_after_restore_leaves_one_copy,
    closing_twice_is_harmless,
]


def outage_is_a_sink_error_and_the_same_write_lands_after_it(
    harness: CuttableSinkHarness,
) -> None:
    sink = harness.open_cuttable()
    try:
        sink.write(A)
        harness.cut()
        with pytest.raises(SinkError) as failed:
            sink.write(B)
        assert not isinstance(failed.value, SinkUnusableError | SinkRejectedError), failed.value
        harness.restore()
        sink.write(B)  # what the sink writer does: the same output again
        sink.flush()
    finally:
        sink.close()
    _holds_once_each(harness, A, B)


def unreachable_destination_is_an_outage(harness: FailingSinkHarness) -> None:
    assert harness.unreachable is not None
    make = harness.unreachable

    def write_once() -> None:  # opening may already find out
        sink = make()
        try:
            sink.write(A)
        finally:
            sink.close()

    started = time.monotonic()
    with pytest.raises(SinkError) as failed:
        write_once()
    took = time.monotonic() - started
    assert not isinstance(failed.value, SinkUnusableError | SinkRejectedError), failed.value
    assert took < FAIL_WITHIN, f"took {took:.1f}s to report: {failed.value}"


def wrong_credentials_make_the_sink_unusable(harness: FailingSinkHarness) -> None:
    assert harness.wrong_credentials is not None
    make, cause = harness.wrong_credentials
    sink = make()
    try:
        with pytest.raises(SinkUnusableError, match=cause):
            sink.check()
        with pytest.raises(SinkUnusableError, match=cause):
            sink.write(A)  # not the data's fault: nothing is refused for it
    finally:
        sink.close()
    assert harness.read() == Counter()


def refused_points_are_raised_with_reasons_and_the_rest_written(
    harness: FailingSinkHarness,
) -> None:
    assert harness.refusal is not None
    sink = harness.open()
    try:
        sink.write(A)
        refusal = harness.refusal(A)
        with pytest.raises(SinkRejectedError) as refused:
            sink.write(refusal.output)
    finally:
        sink.close()
    assert refused.value.lines == refusal.refused
    assert len(refused.value.reasons) == len(refusal.refused)
    assert all(reason.strip() for reason in refused.value.reasons)
    assert harness.read() == Counter(harness.render(A) + harness.render(refusal.written))
