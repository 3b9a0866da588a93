"""Checkpoints are written in the background: the stream goes on meanwhile, and the
positions a checkpoint stands for are committed only once it is durable."""

from __future__ import annotations

import pickle
import threading
from pathlib import Path

import pytest

from connectors.base import Output
from connectors.codecs import Decoder
from connectors.memory import MemorySink, MemorySource
from models.baseline import SeasonalNaive
from streamer.core.records import NS_PER_S
from streamer.engine.checkpoint import CheckpointStore
from streamer.engine.checkpoint_writer import CheckpointWriter
from streamer.engine.pipeline import Pipeline, PipelineSettings
from streamer.engine.window import WindowBuffer
from tests.unit.test_pipeline import Clock, points, ticks
from tests.unit.test_series_state import FORECASTERS, payloads, pipeline


class GatedStore(CheckpointStore):
    """Writes wait at `gate` while it is set to an unset Event; `crash` makes the write
    fail where the process would have died, before the commit."""

    gate: threading.Event | None = None
    crash = False

    def write(self, blob: bytes) -> int:
        if self.gate is not None:
            self.gate.wait(30)
        if self.crash:
            raise RuntimeError("the process died here")
        return super().write(blob)


def run(source: MemorySource, sink: MemorySink, store: CheckpointStore, clock: Clock) -> Pipeline:
    """Three series, two of them held in the window at a time (the third is spilled to
    the store and back every step); a checkpoint due at every batch."""
    return Pipeline(
        sources=[(source, Decoder(kind="sensor", series_field="symbol", value_field="price"))],
        window=WindowBuffer(step_ns=NS_PER_S, max_series=2, spill=store),
        forecaster=SeasonalNaive(horizon=2, season_length=3),
        sinks=[sink],
        checkpoints=store,
        settings=PipelineSettings(max_batch=3, max_wait=0, checkpoint_every=1.0, stop_at_end=True),
        clock=clock,
    )


def test_a_checkpoint_being_written_holds_no_batch_up_and_a_crash_meanwhile_loses_nothing(
    tmp_path: Path,
) -> None:
    payloads = ticks(n_symbols=3, seconds=30)
    clean = MemorySink()
    run(
        MemorySource("ticks", payloads), clean, CheckpointStore(tmp_path / "clean.db"), Clock()
    ).run(threading.Event())

    clock, first_sink = Clock(), MemorySink()
    source, store = MemorySource("ticks", payloads), GatedStore(tmp_path / "c.db")
    first = run(source, first_sink, store, clock)
    first.restore()
    for _ in range(8):  # checkpoints written and committed as the stream goes
        clock.now += 1
        first.step()
    assert first.saver is not None
    first.saver.wait()
    durable = dict(source.committed)
    assert durable
    assert first.counters.checkpoints >= 2

    store.gate = threading.Event()  # the next write takes as long as the test likes
    clock.now += 1
    first.step()
    assert first.saver.busy
    read = first.counters.events_in
    for _ in range(6):  # series are spilled and come back meanwhile
        clock.now += 1
        first.step()
    assert first.counters.events_in == read + 18, "a batch waited for the checkpoint"
    assert source.committed == durable, "positions committed before their checkpoint"
    store.gate.set()  # written: what was spilled meanwhile is not part of it
    first.saver.wait()
    assert source.committed != durable

    store.gate = threading.Event()  # and the process dies during the next one
    clock.now += 1
    first.step()
    for _ in range(4):
        clock.now += 1
        first.step()
    store.crash = True
    store.gate.set()
    first.saver._thread.join()  # type: ignore[union-attr]
    store.close()

    second_sink = MemorySink()
    second = run(
        MemorySource("ticks", payloads), second_sink, CheckpointStore(tmp_path / "c.db"), Clock()
    )
    assert second.restore()
    second.run(threading.Event())
    assert points(first_sink.outputs + second_sink.outputs) == points(clean.outputs)


def test_spills_after_a_checkpoints_state_are_not_committed_with_it(tmp_path: Path) -> None:
    store = GatedStore(tmp_path / "c.db")
    store.put("A", {"at": 1})
    store.save({"checkpoint": 1})
    store.put("B", {"at": 2})  # before the next checkpoint's state: part of it
    writer = CheckpointWriter(store)
    store.gate = threading.Event()
    writer.start({"checkpoint": 2}, lambda: None)
    # While it is being written, A comes back to the window and C is spilled.
    assert store.pop("A") == {"at": 1}
    store.put("C", {"at": 3})
    assert store.pop("C") == {"at": 3}
    store.put("C", {"at": 4})
    store.gate.set()
    assert writer.wait()
    store.close()  # the process dies before another checkpoint

    after = CheckpointStore(tmp_path / "c.db")
    assert after.load() == {"checkpoint": 2}
    assert after.pop("A") == {"at": 1}, "A's return was committed with a state that lacks A"
    assert after.pop("B") == {"at": 2}
    assert after.pop("C") is None


class GatedSink(MemorySink):
    """A sink whose writes wait while `gate` is an unset Event: a slow server."""

    gate: threading.Event | None = None

    def write(self, output: Output) -> None:
        if self.gate is not None:
            self.gate.wait(30)
        super().write(output)


def test_a_checkpoint_waits_for_the_sinks_behind_the_stream_not_in_it(tmp_path: Path) -> None:
    """With a sink slow to acknowledge, the batch that starts a checkpoint does not wait
    for it; the positions are committed only once every output the checkpoint covers is
    written, and a restore from it continues the output exactly."""
    payloads = ticks(n_symbols=3, seconds=30)
    clean = MemorySink()
    run(
        MemorySource("ticks", payloads), clean, CheckpointStore(tmp_path / "clean.db"), Clock()
    ).run(threading.Event())

    clock, sink, source = Clock(), GatedSink(), MemorySource("ticks", payloads)
    first = run(source, sink, CheckpointStore(tmp_path / "c.db"), clock)
    first.restore()
    for _ in range(4):
        clock.now += 1
        first.step()
    assert first.saver is not None
    first.saver.wait()
    durable = dict(source.committed)

    sink.gate = threading.Event()  # the sink stops acknowledging
    clock.now += 1
    first.step()  # starts a checkpoint behind the outputs still unwritten
    assert first.saver.busy
    read = first.counters.events_in
    clock.now += 1
    first.step()
    assert first.counters.events_in == read + 3, "the stream waited for the sink"
    assert not first.saver.poll()
    assert source.committed == durable, "positions committed before their outputs were written"
    sink.gate.set()
    first.saver.wait()
    assert source.committed != durable
    written = len(sink.outputs)
    first.writer.close()  # the process dies with what it wrote so far
    assert first.checkpoints is not None
    first.checkpoints.close()

    second_sink = MemorySink()
    second = run(
        MemorySource("ticks", payloads), second_sink, CheckpointStore(tmp_path / "c.db"), Clock()
    )
    assert second.restore()
    second.run(threading.Event())
    assert written >= 1
    assert points(sink.outputs + second_sink.outputs) == points(clean.outputs)


@pytest.mark.parametrize("drift", ["adwin", "kswin", "page_hinkley"])
@pytest.mark.parametrize("model", sorted(FORECASTERS))
def test_the_state_a_checkpoint_takes_does_not_change_as_the_stream_goes_on(
    model: str, drift: str
) -> None:
    """The checkpoint's thread encodes the state while the pipeline steps on: what the
    pipeline hands it must be copies, not views of what it goes on changing."""
    symbols = [f"S{k}" for k in range(6)]
    pipe = pipeline(model, drift, MemorySink(), payloads(symbols, range(0, 80)))
    for _ in range(40):
        pipe.step()
    state = pipe.state_dict(with_sinks=False)
    taken = pickle.dumps(state, protocol=5)
    pipe.run(threading.Event())
    assert pipe.counters.steps_closed > 300
    assert pickle.dumps(state, protocol=5) == taken
