"""The series state of the partitions this replica owns, kept in a changelog (scale-out).

Replicas of a group share the input's partitions (a Kafka consumer group per source,
each with its changelog). A series is keyed to one partition, so its state lives where
that partition is read:

- each series is claimed by the partition it first came on; records that name it on
  another partition (input not keyed by series) are refused (`not_keyed_by_series`),
  since two replicas would otherwise each hold half of it;
- series whose state changed are marked, and each checkpoint writes their records to
  the changelog in one transaction with the owned partitions' input positions;
- an assigned partition stays paused until its series are restored from the changelog;
  one that comes back with its changelog unchanged since this replica let it go (the
  revoke-all of an eager rebalance, a follow-up round) keeps the state held instead;
- a revoked partition (its checkpoint committed first) is let go; a lost one (this
  member was thrown out of the group) is dropped without a commit, as is everything
  when a commit is fenced: the partitions are restored again when they come back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from functools import partial
from typing import Any, Protocol

from connectors.base import Changelog, PartitionedSource
from streamer.core.errors import ChangelogFencedError, SourceError
from streamer.core.records import NOT_KEYED, Rejection
from streamer.engine.decoding import Decoded
from streamer.engine.series_state import SeriesStates
from streamer.engine.snapshot import GroupStatus

log = logging.getLogger(__name__)


Key = tuple[str, str]  # (source name, partition)


class LocalCopy(Protocol):
    """Where a replica keeps its partitions' series records when it stops, with the
    changelog offset they stand at (`CheckpointStore`)."""

    def keep_partition(self, source: str, partition: str, since: int, records: Any) -> None: ...

    def held_partition(self, source: str, partition: str) -> tuple[int, Any] | None: ...


class PartitionStates:
    """What this replica holds, by (source, input partition) (see module doc)."""

    def __init__(
        self,
        sources: list[tuple[PartitionedSource, Changelog]],
        series: SeriesStates,
        copy: LocalCopy | None = None,
    ) -> None:
        self.sources = {source.name: (source, changelog) for source, changelog in sources}
        self.series = series
        self.copy = copy  # read first on a restore, kept when this replica stops
        self.owner: dict[str, Key] = {}  # series -> its partition
        self.members: dict[Key, set[str]] = {}  # partition -> its series
        self.dirty: set[str] = set()  # series changed since the last commit
        self.owned: set[Key] = set()  # assigned and restored: being read
        self.restoring: list[Key] = []  # assigned, paused until restored
        self.suspended: dict[Key, int] = {}  # revoked, still held: changelog end then
        self.restored_series = 0  # in all, for the metrics
        self.restore_seconds = 0.0
        self.commits = 0
        self._refusal_logged = False
        for source, _ in sources:
            source.on_assign = partial(self._assigned, source.name)
            source.on_lost = partial(self._lost, source.name)

    def holds(self, source: str) -> bool:
        """Whether this source's partitions are shared out (its offsets committed here)."""
        return source in self.sources

    def _changelog(self, key: Key) -> Changelog:
        return self.sources[key[0]][1]

    # --- the group's calls (on the client's thread, while the loop waits in poll) -----

    def _assigned(self, source: str, partitions: list[str]) -> None:
        self.restoring.extend(
            k for k in ((source, p) for p in partitions) if k not in self.restoring
        )

    def revoked(self, source: str, partitions: list[str]) -> None:
        """After the pipeline's checkpoint committed them: let these partitions go."""
        for key in ((source, p) for p in partitions):
            if key in self.restoring:
                self.restoring.remove(key)  # never read: nothing of it is held
            if key in self.owned:
                self.owned.discard(key)
                # Read right after the commit, the end may not count it yet (its markers
                # are written a moment later): then the partition, if it comes back, is
                # read again rather than kept. Never the other way round.
                self.suspended[key] = self._changelog(key).end(key[1])

    def _lost(self, source: str, partitions: list[str]) -> None:
        for p in partitions:
            self._drop((source, p))

    # --- on the loop's thread ---------------------------------------------------------

    def restore(self, now: float) -> None:
        """Restore the partitions assigned since the last call, then let them be read;
        let go of the revoked ones that did not come back."""
        pending, self.restoring = self.restoring, []
        for key in [k for k in self.suspended if k not in pending]:
            self._drop(key)
        ready: dict[str, list[str]] = {}
        for key in pending:
            source, p = key
            try:
                held = self.suspended.pop(key, None)
                if held is not None and held == self._changelog(key).end(p):
                    kept = len(self.members.get(key, ()))
                    log.info("partition %s is back, unchanged: its %d series carry on", p, kept)
                else:
                    self._drop(key)
                    self._restore(key, now)
            except SourceError as exc:  # Kafka is away: try again at the next batch
                log.warning("partition %s not restored yet: %s", p, exc)
                self.restoring.append(key)
                continue
            self.owned.add(key)
            ready.setdefault(source, []).append(p)
        for source, partitions in ready.items():
            self.sources[source][0].resume(partitions)

    def _restore(self, key: Key, now: float) -> None:
        started = time.monotonic()
        records, copied = self._records(key)
        names = list(records)
        self.series.put(names, [records[name] for name in names], now)
        self.owner.update(dict.fromkeys(names, key))
        self.members[key] = set(names)
        seconds = time.monotonic() - started
        self.restored_series += len(names)
        self.restore_seconds += seconds
        log.info(
            "restored partition %s: %d series (%d from the local copy) in %.2f s",
            key[1],
            len(names),
            copied,
            seconds,
        )

    def _records(self, key: Key) -> tuple[dict[str, bytes], int]:
        """The partition's series records: the local copy and the changelog after it,
        or the whole changelog; and how many came from the copy unchanged."""
        changelog = self._changelog(key)
        held = None if self.copy is None else self.copy.held_partition(*key)
        base: dict[str, bytes] = {}
        if held is not None:
            since, base = held
            tail, end = changelog.restore(key[1], since)
            if end < since:  # not this changelog's copy (the topic was made anew)
                base = {}
                tail, _ = changelog.restore(key[1])
        else:
            tail, _ = changelog.restore(key[1])
        merged = {**base, **tail}
        records = {name: record for name, record in merged.items() if record is not None}
        return records, len(base.keys() - tail.keys())

    def keep_local(self, now: float) -> None:
        """Keep a local copy of every partition held (the replica stops: its last
        checkpoint committed them), for a faster restore when they come back. A
        partition with a series evicted from the window is left out: the copy would
        miss it."""
        if self.copy is None:
            return
        live = self.series.window.slot_of
        for key in sorted(self.owned):
            names = sorted(self.members.get(key, ()))
            if any(name not in live for name in names):
                continue
            try:  # (an end that lags the last commit only makes the tail read longer)
                since = self._changelog(key).end(key[1])
            except SourceError as exc:
                log.warning("partition %s: no local copy kept: %s", key[1], exc)
                continue
            records = dict(zip(names, self.series.take(names, now), strict=True))
            self.copy.keep_partition(*key, since, records)

    def _drop(self, key: Key) -> None:
        self.suspended.pop(key, None)
        self.owned.discard(key)
        names = list(self.members.pop(key, ()))
        self.series.drop(names)
        for name in names:
            self.owner.pop(name, None)
        self.dirty.difference_update(names)

    def admit(self, decoded: Decoded) -> None:
        """Claim each value's series for the partition it came on; values whose series
        belongs to another partition move to the rejections, saying where it lives."""
        owner, members = self.owner, self.members
        refused = []
        for i, (name, record) in enumerate(zip(decoded.series, decoded.origin, strict=True)):
            key = (record.position.source, record.position.partition)
            held = owner.get(name)
            if held is None:
                owner[name] = key
                members.setdefault(key, set()).add(name)
            elif held != key:
                refused.append(i)
        if not refused:
            return
        for i in refused:
            name, record = decoded.series[i], decoded.origin[i]
            where = record.position
            detail = (
                f"series {name!r} came on partition {where.partition} of source "
                f"{where.source!r}, but it is read from partition {owner[name][1]} of "
                f"source {owner[name][0]!r}: in a scaled group each series must keep to "
                "one partition. Key the input records by series (the Kafka key), or run "
                "a single replica"
            )
            decoded.rejections.append(Rejection(NOT_KEYED, detail, record.payload, where))
        if not self._refusal_logged:
            self._refusal_logged = True
            log.error("input not keyed by series: %s", decoded.rejections[-1].detail)
        keep = sorted(set(range(len(decoded.series))) - set(refused))
        d = decoded
        d.series, d.kinds = [d.series[i] for i in keep], [d.kinds[i] for i in keep]
        d.times, d.values = [d.times[i] for i in keep], [d.values[i] for i in keep]
        d.origin = [d.origin[i] for i in keep]

    def touched(self, names: list[str]) -> None:
        self.dirty.update(names)

    def commit(self, positions: Mapping[str, Mapping[str, int]], now: float) -> None:
        """For each source: the changed series' state and the owned partitions'
        positions as one transaction. A fenced source's partitions are dropped, to be
        restored when they come back; a failed one is tried again at the next commit."""
        live = self.series.window.slot_of
        names = [name for name in self.dirty if name in live]  # evicted: its last stands
        changes: dict[Key, dict[str, bytes | None]] = {k: {} for k in self.owned}
        for name, record in zip(names, self.series.take(names, now), strict=True):
            key = self.owner.get(name)
            if key in changes:
                changes[key][name] = record
        committed = set()
        for name, (source, changelog) in self.sources.items():
            mine = {p: c for (s, p), c in changes.items() if s == name and c}
            offsets = {p: o for p, o in positions.get(name, {}).items() if (name, p) in self.owned}
            try:
                changelog.commit(mine, offsets, source.group_metadata())
            except ChangelogFencedError as exc:
                held = [k for k in {*self.members, *self.suspended, *self.owned} if k[0] == name]
                log.error("%s; dropping the state of %d partition(s)", exc, len(held))
                for key in held:
                    self._drop(key)
                # Nothing more of them is read here until the group assigns them anew
                # (then restored from the changelog): without its state, a series would
                # start afresh and overwrite what the new owner writes.
                source.pause([p for _, p in held])
                continue
            except SourceError as exc:
                log.warning("%s", exc)  # the changes stay marked: the next commit has them
                continue
            committed.add(name)
            self.commits += 1
        self.dirty = {
            n for n in self.dirty if n in self.owner and self.owner[n][0] not in committed
        }

    def status(self, trainer: bool | None) -> GroupStatus:
        return GroupStatus(
            owned=tuple(sorted(p for _, p in self.owned)),
            restoring=tuple(p for _, p in self.restoring),
            restored_series=self.restored_series,
            restore_seconds=self.restore_seconds,
            changelog_pending=len(self.dirty),
            changelog_commits=self.commits,
            trainer=trainer,
        )

    def close(self) -> None:
        for _, changelog in self.sources.values():
            changelog.close()
