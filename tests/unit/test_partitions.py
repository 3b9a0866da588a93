"""A partition moving between replicas takes its series' state along (in-memory group)."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from connectors.base import RawRecord, StreamSource
from connectors.codecs import Decoder
from connectors.memory import MemorySink
from models.baseline import SeasonalNaive
from models.cold_start import ColdStart
from models.outcomes import Outcomes
from models.recurrent import RecurrentForecaster
from streamer.config.drift import make_detector
from streamer.config.schema import PageHinkleyDetector
from streamer.core.errors import ChangelogFencedError
from streamer.core.records import NOT_KEYED, NS_PER_S, Position
from streamer.engine.checkpoint import CheckpointStore
from streamer.engine.drift import DriftMonitor
from streamer.engine.partitions import PartitionStates
from streamer.engine.pipeline import Pipeline, PipelineSettings
from streamer.engine.window import WindowBuffer
from tests.unit.test_pipeline import points

T0 = 1_700_000_000
H = 3


class Group:
    """Partitions of records, their committed offsets and their changelog, shared by
    the members as a broker would hold them."""

    def __init__(self, partitions: dict[str, list[bytes]]) -> None:
        self.records = partitions
        self.committed: dict[str, int] = {}
        self.changelog: dict[str, list[tuple[str, bytes | None]]] = {p: [] for p in partitions}
        self.generation = 0
        self.members: list[Member] = []


class Member(StreamSource):
    """A consumer-group member whose assignment the test moves."""

    def __init__(self, group: Group, name: str = "ticks") -> None:
        self.name = name
        self.group = group
        self.assigned: list[str] = []
        self.paused: set[str] = set()
        self.next: dict[str, int] = {}
        self.generation = 0
        self.on_assign: Any = None
        self.on_lost: Any = None
        group.members.append(self)

    def assign(self, partitions: list[str]) -> None:
        """A rebalance that gives this member these partitions (others keep theirs)."""
        self.group.generation += 1
        for member in self.group.members:
            member.generation = self.group.generation
        self.assigned += partitions
        self.paused |= set(partitions)
        for p in partitions:
            self.next[p] = self.group.committed.get(p, 0)
        self.on_assign(partitions)

    def revoke(self, partitions: list[str]) -> None:
        assert self.on_revoke is not None
        self.on_revoke(partitions)
        self.assigned = [p for p in self.assigned if p not in partitions]

    def poll(self, max_records: int, timeout: float) -> list[RawRecord]:
        out: list[RawRecord] = []
        for p in self.assigned:
            if p in self.paused:
                continue
            records = self.group.records[p]
            while self.next[p] < len(records) and len(out) < max_records:
                out.append(RawRecord(records[self.next[p]], Position(self.name, p, self.next[p])))
                self.next[p] += 1
        return out

    def resume(self, partitions: list[str]) -> None:
        self.paused -= set(partitions)

    def pause(self, partitions: list[str]) -> None:
        self.paused |= set(partitions) & set(self.assigned)

    def group_metadata(self) -> Any:
        return self.generation

    @property
    def exhausted(self) -> bool:
        return all(self.next[p] >= len(self.group.records[p]) for p in self.assigned)

    def commit(self, positions: Mapping[str, int]) -> None:
        raise AssertionError("in a group, offsets are committed with the changelog")

    def seek(self, positions: Mapping[str, int]) -> None:
        pass

    def close(self) -> None:
        pass


class Changelog:
    def __init__(self, group: Group) -> None:
        self.group = group
        self.commits = 0
        self.read_from: list[int] = []

    def restore(self, partition: str, since: int = 0) -> tuple[dict[str, bytes | None], int]:
        self.read_from.append(since)
        log = self.group.changelog[partition]
        return dict(log[since:]), len(log)

    def end(self, partition: str) -> int:
        return len(self.group.changelog[partition])

    def commit(
        self,
        changes: Mapping[str, Mapping[str, bytes | None]],
        positions: Mapping[str, int],
        group: Any,
    ) -> None:
        if group != self.group.generation:
            raise ChangelogFencedError("fenced")
        for partition, records in changes.items():
            self.group.changelog[partition].extend(records.items())
        self.group.committed.update(positions)
        self.commits += 1

    def close(self) -> None:
        pass


def ticks_of(symbols: list[str], seconds: range) -> list[bytes]:
    """One tick a second per symbol; the same second gives the same prices, whatever
    range it is asked with."""
    out = []
    for t in seconds:
        rng = np.random.default_rng(t)
        for k, s in enumerate(symbols):
            price = round(100 + 5 * k + float(rng.normal()), 3)
            out.append(json.dumps({"symbol": s, "price": price, "ts": (T0 + t) * 1000}).encode())
    return out


def replica(
    group: Group, sink: MemorySink, copy: CheckpointStore | None = None
) -> tuple[Pipeline, Member]:
    member = Member(group)
    pipeline = Pipeline(
        sources=[(member, Decoder(kind="price", series_field="symbol", value_field="price"))],
        window=WindowBuffer(step_ns=NS_PER_S, max_series=100, allowed_lateness_ns=NS_PER_S),
        forecaster=ColdStart(
            RecurrentForecaster(H, hidden_size=8),
            SeasonalNaive(horizon=H, season_length=4),
            min_train_steps=0,
            compare=False,
        ),
        outcomes=Outcomes(horizon=H, window=10),
        drift=DriftMonitor(make_detector(PageHinkleyDetector(type="page_hinkley")), "ph"),
        sinks=[sink],
        settings=PipelineSettings(max_batch=5, max_wait=0, checkpoint_every=None, stop_at_end=True),
        clock=lambda: float(T0 + 10_000),
        partitions=lambda series: PartitionStates([(member, Changelog(group))], series, copy),
    )
    return pipeline, member


def drain(pipeline: Pipeline, member: Member) -> None:
    while not member.exhausted or member.paused:
        pipeline.step()


def test_a_partition_that_moves_carries_on_where_it_stood() -> None:
    symbols = ["A", "B", "C", "D"]
    parts = {"t/0": symbols[:2], "t/1": symbols[2:]}
    both = {p: ticks_of(s, range(0, 40)) for p, s in parts.items()}

    alone = MemorySink()
    single, member = replica(Group({p: list(r) for p, r in both.items()}), alone)
    member.assign(["t/0", "t/1"])
    single.run(threading.Event())

    first_half = {p: ticks_of(s, range(0, 20)) for p, s in parts.items()}
    group = Group(first_half)
    sink_a, sink_b = MemorySink(), MemorySink()
    a, member_a = replica(group, sink_a)
    member_a.assign(["t/0", "t/1"])
    drain(a, member_a)
    b, member_b = replica(group, sink_b)
    member_a.revoke(["t/1"])  # a rebalance: the newcomer takes t/1
    member_b.assign(["t/1"])
    assert b.window.live_series == 0  # restored only when the loop next runs
    for p, s in parts.items():
        group.records[p] += ticks_of(s, range(20, 40))
    b.step()
    assert b.window.live_series == 2  # C and D, from the changelog, before their records
    drain(a, member_a)
    drain(b, member_b)
    a.run(threading.Event())
    b.run(threading.Event())

    expected = points(alone.outputs)
    got = points(sink_a.outputs + sink_b.outputs)
    assert got.keys() == expected.keys()
    differ = [k for k in expected if not np.allclose(got[k], expected[k])]
    assert not differ, f"{len(differ)} of {len(expected)} points differ, e.g. {differ[0]}"
    # A wrote nothing of t/1 after letting it go, B nothing of t/0.
    assert {k[1] for k in points(sink_b.outputs)} <= {"C", "D", ""}


def test_a_series_on_two_partitions_is_refused_where_it_does_not_live() -> None:
    group = Group({"t/0": ticks_of(["A"], range(0, 5)), "t/1": ticks_of(["A", "B"], range(0, 5))})
    sink = MemorySink()
    pipeline, member = replica(group, sink)
    member.assign(["t/0"])
    drain(pipeline, member)
    member.assign(["t/1"])
    drain(pipeline, member)
    counters = pipeline.run(threading.Event())
    assert counters.rejected[NOT_KEYED] == 5
    assert pipeline.window.live_series == 2


def test_a_fenced_commit_drops_the_state_to_be_restored_again() -> None:
    group = Group({"t/0": ticks_of(["A", "B"], range(0, 10))})
    pipeline, member = replica(group, MemorySink())
    member.assign(["t/0"])
    drain(pipeline, member)
    pipeline.checkpoint()
    committed = dict(group.committed)
    group.generation += 1  # the group moved on without this member (it stalled)
    for _ in range(3):
        group.records["t/0"] += ticks_of(["A", "B"], range(10, 11))
    drain(pipeline, member)
    pipeline.checkpoint()
    assert group.committed == committed  # refused
    assert pipeline.window.live_series == 0
    assert pipeline.partitions is not None
    assert not pipeline.partitions.owned
    # Until the group assigns it anew, nothing more of it is read: without their state,
    # its series would start afresh and overwrite what the new owner writes.
    group.records["t/0"] += ticks_of(["A", "B"], range(11, 12))
    assert pipeline.step() == 0
    assert pipeline.window.live_series == 0


def test_metrics_show_the_partitions_owned_restores_and_the_changelog_lag() -> None:
    from prometheus_client import generate_latest

    from streamer.service.metrics import Metrics

    group = Group({"t/0": ticks_of(["A", "B"], range(0, 10)), "t/1": ticks_of(["C"], range(0, 10))})
    first, member = replica(group, MemorySink())
    member.assign(["t/0", "t/1"])
    drain(first, member)
    first.checkpoint()
    second, newcomer = replica(group, MemorySink())
    member.revoke(["t/1"])
    newcomer.assign(["t/1"])
    second.step()
    group.records["t/0"] += ticks_of(["A", "B"], range(10, 12))
    drain(first, member)

    def metrics(pipeline: Pipeline) -> str:
        return generate_latest(Metrics().collect_from(lambda: pipeline.snapshot).registry).decode()

    text = metrics(first)
    assert 'streamer_partition_owned{partition="t/0"} 1.0' in text
    assert 'partition="t/1"' not in text
    assert "streamer_changelog_pending 2.0" in text  # A and B changed since the commit
    assert "streamer_changelog_commits_total 2.0" in text  # the checkpoint, the revoke
    text = metrics(second)
    assert 'streamer_partition_owned{partition="t/1"} 1.0' in text
    assert "streamer_restored_series_total 1.0" in text  # C
    assert "streamer_partitions_restoring 0.0" in text


def test_two_grouped_sources_keep_their_partitions_and_changelogs_apart() -> None:
    """The same partition name in two sources' topics is two partitions."""
    ticks = Group({"t/0": ticks_of(["A", "B"], range(0, 10))})
    more = Group({"t/0": ticks_of(["C"], range(0, 10))})
    first_ticks, first_more = Member(ticks, "ticks"), Member(more, "more")
    decoder = Decoder(kind="price", series_field="symbol", value_field="price")

    def build(a: Member, b: Member, sink: MemorySink) -> Pipeline:
        return Pipeline(
            sources=[(a, decoder), (b, decoder)],
            window=WindowBuffer(step_ns=NS_PER_S, max_series=100),
            forecaster=SeasonalNaive(horizon=H, season_length=4),
            sinks=[sink],
            settings=PipelineSettings(max_batch=5, max_wait=0, checkpoint_every=None),
            clock=lambda: float(T0 + 10_000),
            partitions=lambda series: PartitionStates(
                [(a, Changelog(a.group)), (b, Changelog(b.group))], series
            ),
        )

    first = build(first_ticks, first_more, MemorySink())
    first_ticks.assign(["t/0"])
    first_more.assign(["t/0"])
    for _ in range(10):
        first.step()
    first.checkpoint()
    assert {k for k, _ in ticks.changelog["t/0"]} == {"A", "B"}
    assert {k for k, _ in more.changelog["t/0"]} == {"C"}
    assert ticks.committed == {"t/0": 20}
    assert more.committed == {"t/0": 10}

    second_ticks, second_more = Member(ticks, "ticks"), Member(more, "more")
    second = build(second_ticks, second_more, MemorySink())
    first_more.revoke(["t/0"])  # only the second source's partition moves
    second_more.assign(["t/0"])
    second.step()
    first.step()
    assert sorted(second.window.slot_of) == ["C"]
    assert sorted(first.window.slot_of) == ["A", "B"]


def test_a_replica_restarted_reads_its_local_copy_and_only_the_changelog_after_it(
    tmp_path: Path,
) -> None:
    group = Group({"t/0": ticks_of(["A", "B"], range(0, 20))})
    store = CheckpointStore(tmp_path / "checkpoint.db")
    first, member = replica(group, MemorySink(), store)
    member.assign(["t/0"])
    drain(first, member)
    stopped = threading.Event()
    stopped.set()
    first.run(stopped)  # stops: its last checkpoint, then a local copy of t/0
    kept_at = len(group.changelog["t/0"])

    # Meanwhile another replica reads t/0 on, and commits more of its state.
    group.records["t/0"] += ticks_of(["A", "B", "C"], range(20, 30))
    other, taker = replica(group, MemorySink())
    taker.assign(["t/0"])
    drain(other, taker)
    other.checkpoint()
    expected = dict(zip(["A", "B", "C"], other.series.take(["A", "B", "C"], 0.0), strict=True))

    back, member = replica(group, MemorySink(), CheckpointStore(tmp_path / "checkpoint.db"))
    member.assign(["t/0"])
    back.step()
    assert back.partitions is not None
    (changelog,) = [c for _, c in back.partitions.sources.values()]
    assert isinstance(changelog, Changelog)
    assert changelog.read_from == [kept_at]  # only the tail after the copy
    restored = dict(zip(["A", "B", "C"], back.series.take(["A", "B", "C"], 0.0), strict=True))
    assert restored == expected
