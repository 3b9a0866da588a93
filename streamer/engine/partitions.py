"""The series state of the partitions this replica owns, kept in a changelog (scale-out).

Replicas of a group share the input's partitions (a Kafka consumer group). A series is
keyed to one partition, so its state lives where that partition is read:

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

from connectors.base import Changelog, PartitionedSource
from streamer.core.errors import ChangelogFencedError, SourceError
from streamer.core.records import NOT_KEYED, Rejection
from streamer.engine.decoding import Decoded
from streamer.engine.series_state import SeriesStates
from streamer.engine.snapshot import GroupStatus

log = logging.getLogger(__name__)


class PartitionStates:
    """What this replica holds, by input partition (see module doc)."""

    def __init__(
        self, source: PartitionedSource, changelog: Changelog, series: SeriesStates
    ) -> None:
        self.source = source
        self.changelog = changelog
        self.series = series
        self.owner: dict[str, str] = {}  # series -> its partition
        self.members: dict[str, set[str]] = {}  # partition -> its series
        self.dirty: set[str] = set()  # series changed since the last commit
        self.owned: set[str] = set()  # assigned and restored: being read
        self.restoring: list[str] = []  # assigned, paused until restored
        self.suspended: dict[str, int] = {}  # revoked, still held: changelog end then
        self.restored_series = 0  # in all, for the metrics
        self.restore_seconds = 0.0
        self.commits = 0
        self._refusal_logged = False
        source.on_assign = self._assigned
        source.on_lost = self._lost

    # --- the group's calls (on the client's thread, while the loop waits in poll) -----

    def _assigned(self, partitions: list[str]) -> None:
        self.restoring.extend(p for p in partitions if p not in self.restoring)

    def revoked(self, partitions: list[str]) -> None:
        """After the pipeline's checkpoint committed them: let these partitions go."""
        for p in partitions:
            if p in self.restoring:
                self.restoring.remove(p)  # never read: nothing of it is held
            if p in self.owned:
                self.owned.discard(p)
                self.suspended[p] = self.changelog.end(p)

    def _lost(self, partitions: list[str]) -> None:
        for p in partitions:
            self._drop(p)

    # --- on the loop's thread ---------------------------------------------------------

    def restore(self, now: float) -> None:
        """Restore the partitions assigned since the last call, then let them be read;
        let go of the revoked ones that did not come back."""
        pending, self.restoring = self.restoring, []
        for p in [p for p in self.suspended if p not in pending]:
            self._drop(p)
        ready = []
        for p in pending:
            try:
                held = self.suspended.pop(p, None)
                if held is not None and held == self.changelog.end(p):
                    kept = len(self.members.get(p, ()))
                    log.info("partition %s is back, unchanged: its %d series carry on", p, kept)
                else:
                    self._drop(p)
                    self._restore(p, now)
            except SourceError as exc:  # Kafka is away: try again at the next batch
                log.warning("partition %s not restored yet: %s", p, exc)
                self.restoring.append(p)
                continue
            self.owned.add(p)
            ready.append(p)
        if ready:
            self.source.resume(ready)

    def _restore(self, partition: str, now: float) -> None:
        started = time.monotonic()
        records = self.changelog.restore(partition)
        names = list(records)
        self.series.put(names, [records[name] for name in names], now)
        self.owner.update(dict.fromkeys(names, partition))
        self.members[partition] = set(names)
        seconds = time.monotonic() - started
        self.restored_series += len(names)
        self.restore_seconds += seconds
        log.info("restored partition %s: %d series in %.2f s", partition, len(names), seconds)

    def _drop(self, partition: str) -> None:
        self.suspended.pop(partition, None)
        self.owned.discard(partition)
        names = list(self.members.pop(partition, ()))
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
            partition = record.position.partition
            held = owner.get(name)
            if held is None:
                owner[name] = partition
                members.setdefault(partition, set()).add(name)
            elif held != partition:
                refused.append(i)
        if not refused:
            return
        for i in refused:
            name, record = decoded.series[i], decoded.origin[i]
            detail = (
                f"series {name!r} came on partition {record.position.partition}, but it is "
                f"read from partition {owner[name]}: in a scaled group each series must keep "
                "to one partition. Key the input records by series (the Kafka key), or run "
                "a single replica"
            )
            decoded.rejections.append(Rejection(NOT_KEYED, detail, record.payload, record.position))
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

    def commit(self, positions: dict[str, int], now: float) -> bool:
        """Write the changed series' state and the owned partitions' positions as one
        transaction; False (everything dropped, to be restored again) when fenced."""
        live = self.series.window.slot_of
        names = [name for name in self.dirty if name in live]  # evicted: its last stands
        changes: dict[str, dict[str, bytes | None]] = {p: {} for p in self.owned}
        for name, record in zip(names, self.series.take(names, now), strict=True):
            partition = self.owner[name]
            if partition in changes:
                changes[partition][name] = record
        owned = {p: o for p, o in positions.items() if p in self.owned}
        try:
            self.changelog.commit(
                {p: c for p, c in changes.items() if c}, owned, self.source.group_metadata()
            )
        except ChangelogFencedError as exc:
            log.error("%s; dropping the state of %d partition(s)", exc, len(self.members))
            for p in list(self.members) + list(self.suspended):
                self._drop(p)
            return False
        except SourceError as exc:
            log.warning("%s", exc)  # the changes stay marked: the next commit has them
            return False
        self.dirty.clear()
        self.commits += 1
        return True

    def status(self, trainer: bool | None) -> GroupStatus:
        return GroupStatus(
            owned=tuple(sorted(self.owned)),
            restoring=tuple(self.restoring),
            restored_series=self.restored_series,
            restore_seconds=self.restore_seconds,
            changelog_pending=len(self.dirty),
            changelog_commits=self.commits,
            trainer=trainer,
        )
