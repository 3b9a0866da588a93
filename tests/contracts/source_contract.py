"""What every `connectors.base.Source` promises, checked through a `SourceHarness`.

    delivery   poll returns everything produced, at most max_records at a time, with
               positions (and the order of what was produced) increasing per partition
    state      while reading: ready, no problem, no early commit wanted; caught up and,
               for a stream that ends, exhausted once everything is read
    commit     what comes after a reopen is exactly what was not committed, where the
               transport replays (a Kafka group, a replay restored from its checkpoint);
               MQTT acknowledges on receipt: only what was published since comes
    close      returns promptly, and a source opened again on the stream still reads
    lag        sum(end_offsets()) minus the committed next offsets is what was produced
               and not committed; a source without offsets says {}
    reconnect  (where the harness can cut the connection) not ready while cut, then
               ready again, with what was produced meanwhile

Each check is a function of a harness; CONTRACT lists them.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Protocol

from connectors.base import RawRecord, Source

POLL_TIMEOUT = 0.5  # seconds one poll may wait for its first record
READ_DEADLINE = 30.0  # seconds to read what was produced, at most
QUIET_POLLS = 5  # polls (of up to 0.2 s) that must then deliver nothing more
CLOSE_WITHIN = 3.0  # seconds a close may take


class SourceHarness(Protocol):
    """Feeds one transport and opens sources on it."""

    replays_uncommitted: bool
    """A reopened source delivers again what was read but not committed (Kafka, replay);
    False where reading acknowledges (MQTT)."""
    keeps_commits: bool
    """The transport keeps committed positions itself (a Kafka group). Otherwise they
    live in the pipeline's checkpoint, and a reopened source is seeked to them."""
    has_offsets: bool
    """end_offsets() reports each partition's end (for the consumer lag)."""
    finite: bool
    """The stream ends: the source is exhausted once it has read everything."""

    def produce(self, payloads: Sequence[bytes]) -> None:
        """Append payloads to the stream (they are there when this returns)."""
        ...

    def open(self) -> Source:
        """A fresh source on the stream, of the same group and name as the ones before."""
        ...


class CuttableSourceHarness(SourceHarness, Protocol):
    """A transport whose connection to the sources it opens can be cut (a proxy
    between them and the server: the server stays up for everyone else)."""

    def cut(self) -> None:
        """Drop the sources' connections and refuse new ones until restore()."""
        ...

    def restore(self) -> None: ...


def payloads(tag: str, count: int) -> list[bytes]:
    """Distinct payloads that sort in the order they were made."""
    return [f"{tag}-{i:03d}".encode() for i in range(count)]


def read(source: Source, count: int, max_records: int = 3) -> list[RawRecord]:
    """Exactly `count` records, polled at most max_records at a time."""
    got: list[RawRecord] = []
    deadline = time.monotonic() + READ_DEADLINE
    while len(got) < count and time.monotonic() < deadline:
        wanted = min(max_records, count - len(got))
        batch = source.poll(wanted, POLL_TIMEOUT)
        assert len(batch) <= wanted, f"poll({wanted}) returned {len(batch)} records"
        got += batch
    assert len(got) == count, f"read {len(got)} records of {count} in {READ_DEADLINE:.0f}s"
    return got


def assert_nothing_more(source: Source) -> None:
    extra: list[RawRecord] = []
    for _ in range(QUIET_POLLS):
        extra += source.poll(100, 0.2)
    assert extra == [], f"records nobody produced (again): {[r.payload for r in extra]}"


def next_offsets(records: Sequence[RawRecord]) -> dict[str, int]:
    """The positions to commit once these records are done: next offset by partition."""
    out: dict[str, int] = {}
    for r in records:
        p = r.position
        out[p.partition] = max(out.get(p.partition, 0), p.offset + 1)
    return out


def reopen(harness: SourceHarness, committed: dict[str, int]) -> Source:
    """A fresh source that continues from `committed`, as the daemon restarts one."""
    source = harness.open()
    if not harness.keeps_commits:
        source.seek(committed)  # the pipeline's restore from its checkpoint
    return source


def payload_set(records: Sequence[RawRecord]) -> list[bytes]:
    return sorted(r.payload for r in records)


def poll_delivers_everything_in_bounded_batches_in_order(harness: SourceHarness) -> None:
    source = harness.open()
    try:
        sent = payloads("a", 10)
        harness.produce(sent)
        got = read(source, len(sent), max_records=3)
        assert payload_set(got) == sorted(sent)
        assert {r.position.source for r in got} == {source.name}
        by_partition: dict[str, list[RawRecord]] = defaultdict(list)
        for r in got:
            by_partition[r.position.partition].append(r)
        for partition, records in by_partition.items():
            offsets = [r.position.offset for r in records]
            assert offsets == sorted(set(offsets)), f"partition {partition!r}: {offsets}"
            order = [r.payload for r in records]
            assert order == sorted(order), f"partition {partition!r} reordered: {order}"
        assert_nothing_more(source)
    finally:
        source.close()


def reports_its_state_while_reading(harness: SourceHarness) -> None:
    source = harness.open()
    try:
        sent = payloads("a", 6)
        harness.produce(sent)
        read(source, 3)
        assert not source.exhausted, "exhausted with records still to read"
        read(source, 3)
        source.poll(100, POLL_TIMEOUT)  # a stream that ends finds out here
        assert source.ready
        assert source.problem is None
        assert source.caught_up
        assert not source.wants_commit
        assert source.exhausted == harness.finite
    finally:
        source.close()


def reopened_source_continues_after_what_was_committed(harness: SourceHarness) -> None:
    first = harness.open()
    try:
        sent = payloads("a", 10)
        harness.produce(sent)
        got = read(first, len(sent))
        committed = next_offsets(got[:4])
        first.commit(committed)
    finally:
        first.close()
    later = payloads("b", 3)
    harness.produce(later)  # while no source reads
    second = reopen(harness, committed)
    try:
        uncommitted = got[4:] if harness.replays_uncommitted else []
        again = read(second, len(uncommitted) + len(later))
        assert payload_set(again) == sorted([r.payload for r in uncommitted] + later)
        replayed = {r.payload: r.position for r in uncommitted}
        assert {r.payload: r.position for r in again if r.payload in replayed} == replayed
        assert_nothing_more(second)
    finally:
        second.close()


def close_is_prompt_and_a_reopened_source_still_reads(harness: SourceHarness) -> None:
    source = harness.open()
    sent = payloads("a", 6)
    harness.produce(sent)
    try:
        read(source, len(sent))
    finally:
        started = time.monotonic()
        source.close()
        took = time.monotonic() - started
    assert took < CLOSE_WITHIN, f"close took {took:.1f}s"
    more = payloads("b", 4)
    harness.produce(more)
    again = reopen(harness, {})  # nothing was committed
    try:
        expected = ([*sent, *more]) if harness.replays_uncommitted else more
        assert payload_set(read(again, len(expected))) == sorted(expected)
    finally:
        again.close()


def lag_is_what_was_produced_and_not_committed(harness: SourceHarness) -> None:
    source = harness.open()
    try:
        sent = payloads("a", 10)
        harness.produce(sent)
        committed = next_offsets(read(source, 4))
        source.commit(committed)
        ends = source.end_offsets()
        if harness.has_offsets:
            assert set(committed) <= set(ends), f"no end for a partition read: {ends}"
            lag = sum(ends.values()) - sum(committed.values())
            assert lag == len(sent) - 4, f"ends {ends}, committed {committed}"
        else:
            assert dict(ends) == {}
    finally:
        source.close()


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not {what} within {seconds:.0f}s"
        time.sleep(0.05)


def reconnects_and_reads_what_was_produced_meanwhile(harness: CuttableSourceHarness) -> None:
    source = harness.open()
    try:
        before = payloads("a", 3)
        harness.produce(before)
        read(source, len(before))
        harness.cut()
        wait_for(lambda: not source.ready, "noticed the cut (ready is still True)")
        after = payloads("b", 3)
        harness.produce(after)
        harness.restore()
        got: set[bytes] = set()
        deadline = time.monotonic() + READ_DEADLINE
        while not set(after) <= got and time.monotonic() < deadline:
            got |= {r.payload for r in source.poll(100, POLL_TIMEOUT)}
        # At least once: a record whose acknowledgement the cut lost may come again.
        assert set(after) <= got <= set(before + after)
        wait_for(lambda: source.ready, "ready again")
    finally:
        source.close()


CONTRACT: list[Callable[[SourceHarness], None]] = [
    poll_delivers_everything_in_bounded_batches_in_order,
    reports_its_state_while_reading,
    reopened_source_continues_after_what_was_committed,
    close_is_prompt_and_a_reopened_source_still_reads,
    lag_is_what_was_produced_and_not_committed,
]
